"""The README's demo: train the reference MNIST CNN briefly, attack it, report.

Trains the Madry et al. (ICLR 2018) MNIST CNN with Adam on a short schedule, then
attacks test points spread evenly over the test set with FGSM and PGD at Linf eps
0.1, 0.2, 0.3 through the benchmark runner into a results store
(``<out>/results.sqlite``), writes the table as JSON and Markdown, and ends with the
HTML report of the run (``<out>/report/index.html``).
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from . import __version__
from .evaluate import (EvalPoints, GridAttack, ModelSpec, Outcomes, ResultsStore, ThreatSpec, rows_to_markdown,
                       run_grid, write_store_report)
from .metrics import wilson_interval

ARCHITECTURE = "madry-mnist"
STORE = "results.sqlite"
REPORT = "report"
#: Points per unit of work (as the demo always attacked them).
BATCH_SIZE = 256


def _summary(series: Outcomes, label: str) -> dict[str, Any]:
    """A stored series as a row of :func:`parry.evaluate.rows_to_markdown` (norms over the
    successful, initially correct points)."""
    n, clean, robust = series.n, int(series.clean_correct.sum()), int(series.robust.sum())
    ok = series.success & series.clean_correct
    norms = {name: {"mean": float(v[ok].mean()) if bool(ok.any()) else float("nan"),
                    "median": float(v[ok].median()) if bool(ok.any()) else float("nan")}
             for name, v in series.norms.items()}
    return {"attack": label, "attack_class": series.attack, "params": series.attack_params,
            "threat": {"norm": series.norm, "eps": series.eps}, "n": n, "clean_accuracy": clean / n,
            "clean_accuracy_ci95": wilson_interval(clean, n), "robust_accuracy": robust / n,
            "robust_accuracy_ci95": wilson_interval(robust, n), "error_rate": 1 - robust / n,
            "attack_success_rate": int(ok.sum()) / clean if clean else float("nan"), "norms": norms,
            "queries": series.total_queries, "time_s": series.time_s, "seed": series.run_seed}


def run_demo(out_dir: str | Path = "runs/demo", *, epochs: int = 1, train_points: int | None = None,
             num_points: int = 1000, eps_values: Sequence[float] = (0.1, 0.2, 0.3), pgd_steps: int = 40,
             seed: int = 0, device: str | torch.device = "cpu", data_root: str | None = None,
             mirror: str | None = None, progress: bool = True,
             echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Train, attack, report; returns the summary written to ``out_dir/results.json``."""
    from .data import load
    from .zoo import evaluate_accuracy, make_classifier, read_metadata, save_checkpoint, train_classifier

    start = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(device)
    echo("[1/4] data: MNIST (LeCun et al. 1998)")
    train_set, test_set = load("mnist", "train", root=data_root, mirror=mirror), load(
        "mnist", "test", root=data_root, mirror=mirror)
    if train_points is not None:
        train_set = train_set.spread(train_points)

    echo(f"[2/4] training the {ARCHITECTURE} CNN: {epochs} epoch(s) of Adam on {len(train_set)} images")
    torch.manual_seed(seed)
    clf = make_classifier(ARCHITECTURE, "mnist")
    recipe = {"optimizer": "adam", "lr": 1e-3, "batch_size": 128, "epochs": epochs, "schedule": "cosine",
              "seed": seed, "train_points": len(train_set)}
    history = train_classifier(clf, train_set, epochs=epochs, batch_size=128, optimizer="adam", lr=1e-3,
                               schedule="cosine", seed=seed, device=device, progress=progress)
    clean = evaluate_accuracy(clf, test_set, device=device)
    echo(f"      clean accuracy on all {len(test_set)} test images: {100 * clean:.2f} % "
         f"({history['wall_time_s']:.0f} s of training)")
    weights = save_checkpoint(out / ARCHITECTURE, clf, architecture=ARCHITECTURE, arch_kwargs={}, dataset="mnist",
                              recipe=recipe, metrics={"clean_accuracy": clean, "test_points": len(test_set)})

    echo(f"[3/4] attacking {num_points} test points spread over the test set: FGSM and PGD-{pgd_steps}, Linf, "
         f"into the results store {out / STORE}")
    model = ModelSpec(ARCHITECTURE, clf, "mnist", checkpoint=str(weights.resolve()),
                      sha256=read_metadata(weights)["sha256"], architecture=ARCHITECTURE, recipe=recipe)
    labels = {"fgsm": "FGSM", "pgd": f"PGD-{pgd_steps}"}
    attacks = [GridAttack("fgsm"), GridAttack("pgd", {"steps": pgd_steps, "seed": seed})]
    with ResultsStore(out / STORE) as store:
        run = run_grid([model], attacks, [ThreatSpec("linf", tuple(eps_values))],
                       EvalPoints.spread(test_set, num_points), store, seed=seed, batch_size=BATCH_SIZE,
                       progress=progress, fresh=True)
        series = {(s.attack, s.eps): s for s in store.outcomes(run.run_id)}
        rows = [_summary(series[a.name, eps], labels[a.name]) for a in attacks for eps in eps_values]
        echo(f"[4/4] report of run {run.run_id}: tables from the store, gallery re-run on 8 points")
        paths, _ = write_store_report(store, out / REPORT, run.run_id, title=f"Parry demo: {ARCHITECTURE} on MNIST",
                                      data=lambda name, split: test_set, device=device)
    table = rows_to_markdown(rows)
    report = {
        "model": {"architecture": ARCHITECTURE, "checkpoint": str(weights), "recipe": recipe,
                  "clean_accuracy_full_test_set": clean, "training_time_s": history["wall_time_s"]},
        "evaluation": {"dataset": "mnist", "split": "test", "points": num_points,
                       "selection": "spread: every (N/n)-th test image from the first", "seed": seed,
                       "store": str(out / STORE), "run": run.run_id},
        "rows": rows,
        "report": {"index": str(paths.index), "summary": str(paths.summary), "leaderboard": str(paths.leaderboard)},
        "environment": {"parry": __version__, "torch": torch.__version__, "python": platform.python_version(),
                        "device": str(device), "threads": torch.get_num_threads()},
        "total_time_s": time.perf_counter() - start,
    }
    (out / "results.json").write_text(json.dumps(report, indent=2))
    header = (f"# Parry demo\n\n{ARCHITECTURE} on MNIST, {epochs} epoch(s) of Adam (seed {seed}); clean accuracy "
              f"{100 * clean:.2f} % on the 10,000 test images. Attacks on {num_points} test points spread over the "
              f"test set, Linf, seed {seed}; PGD-{pgd_steps} uses step 2.5*eps/{pgd_steps} and a random start, "
              f"with early exit; norms are over successful points. Per-sample results: {STORE} (run "
              f"{run.run_id}); HTML report: {REPORT}/index.html.\n\n")
    (out / "results.md").write_text(header + table + "\n")
    echo("")
    echo(table)
    echo(f"\nwrote {out / 'results.json'}, {out / 'results.md'} and the results store {out / STORE} "
         f"in {report['total_time_s']:.0f} s")
    echo(f"report: {paths.index}")
    return report
