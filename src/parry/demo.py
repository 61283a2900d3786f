"""The README's demo: train the reference MNIST CNN briefly, attack it, report.

Trains the Madry et al. (ICLR 2018) MNIST CNN with Adam on a short schedule, then
attacks test points spread evenly over the test set with FGSM and PGD at Linf eps
0.1, 0.2, 0.3 and writes the table as JSON and Markdown.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from . import __version__
from .attacks import FGSM, PGD
from .evaluate import AttackSpec, evaluate_attacks, rows_to_markdown

ARCHITECTURE = "madry-mnist"


def run_demo(out_dir: str | Path = "runs/demo", *, epochs: int = 1, train_points: int | None = None,
             num_points: int = 1000, eps_values: Sequence[float] = (0.1, 0.2, 0.3), pgd_steps: int = 40,
             seed: int = 0, device: str | torch.device = "cpu", data_root: str | None = None,
             mirror: str | None = None, progress: bool = True,
             echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Train, attack, report; returns the report written to ``out_dir/results.json``."""
    from .data import load
    from .zoo import evaluate_accuracy, make_classifier, save_checkpoint, train_classifier

    start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(device)
    echo("[1/3] data: MNIST (LeCun et al. 1998)")
    train_set, test_set = load("mnist", "train", root=data_root, mirror=mirror), load(
        "mnist", "test", root=data_root, mirror=mirror)
    if train_points is not None:
        train_set = train_set.spread(train_points)

    echo(f"[2/3] training the {ARCHITECTURE} CNN: {epochs} epoch(s) of Adam on {len(train_set)} images")
    torch.manual_seed(seed)
    clf = make_classifier(ARCHITECTURE, "mnist")
    recipe = {"optimizer": "adam", "lr": 1e-3, "batch_size": 128, "epochs": epochs, "schedule": "cosine",
              "seed": seed, "train_points": len(train_set)}
    history = train_classifier(clf, train_set, epochs=epochs, batch_size=128, optimizer="adam", lr=1e-3,
                               schedule="cosine", seed=seed, device=device, progress=progress)
    clean = evaluate_accuracy(clf, test_set, device=device)
    echo(f"      clean accuracy on all {len(test_set)} test images: {100 * clean:.2f} % "
         f"({history['wall_time_s']:.0f} s of training)")
    save_checkpoint(out / ARCHITECTURE, clf, architecture=ARCHITECTURE, arch_kwargs={}, dataset="mnist",
                    recipe=recipe, metrics={"clean_accuracy": clean, "test_points": len(test_set)})

    echo(f"[3/3] attacking {num_points} test points spread over the test set: FGSM and PGD-{pgd_steps}, Linf")
    x, y = test_set.spread(num_points).tensors(device=device)
    specs = [AttackSpec("FGSM", lambda eps: FGSM(eps)),
             AttackSpec(f"PGD-{pgd_steps}", lambda eps: PGD(eps, steps=pgd_steps, seed=seed))]
    rows = evaluate_attacks(clf, x, y, specs, eps_values, seed=seed, progress=progress)
    table = rows_to_markdown(rows)
    report = {
        "model": {"architecture": ARCHITECTURE, "checkpoint": str(out / f"{ARCHITECTURE}.safetensors"),
                  "recipe": recipe, "clean_accuracy_full_test_set": clean, "training_time_s": history["wall_time_s"]},
        "evaluation": {"dataset": "mnist", "split": "test", "points": num_points,
                       "selection": "spread: every (N/n)-th test image from the first", "seed": seed},
        "rows": rows,
        "environment": {"parry": __version__, "torch": torch.__version__, "python": platform.python_version(),
                        "device": str(device), "threads": torch.get_num_threads()},
        "total_time_s": time.perf_counter() - start,
    }
    (out / "results.json").write_text(json.dumps(report, indent=2))
    header = (f"# Parry demo\n\n{ARCHITECTURE} on MNIST, {epochs} epoch(s) of Adam (seed {seed}); clean accuracy "
              f"{100 * clean:.2f} % on the 10,000 test images. Attacks on {num_points} test points spread over the "
              f"test set, Linf, seed {seed}; PGD-{pgd_steps} uses step 2.5*eps/{pgd_steps} and a random start, "
              f"with early exit; norms are over successful points.\n\n")
    (out / "results.md").write_text(header + table + "\n")
    echo("")
    echo(table)
    echo(f"\nwrote {out / 'results.json'} and {out / 'results.md'} in {report['total_time_s']:.0f} s")
    return report
