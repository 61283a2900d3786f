"""Time to accuracy (issue 7): the best MNIST recipe in half the time against a plain eager
PyTorch PGD-AT loop, both judged by the same attack on the same points.

    .venv/bin/python benchmarks/time_to_accuracy.py plain  --minutes 60   # the reference loop
    .venv/bin/python benchmarks/time_to_accuracy.py recipe --minutes 30   # parry train --recipe mnist-pgd-at-ema
    .venv/bin/python benchmarks/time_to_accuracy.py evaluate              # AutoAttack-standard on both, the table

Each training phase needs the machine to itself (its budget is wall-clock time), so the phases
are separate commands; set ``OMP_NUM_THREADS`` the same for both. The plain loop is what a user
writes without Parry: the TRADES SmallCNN, NCHW fp32, Adam at a constant 1e-3, batches of 128
from all 60,000 training images (reshuffled, seeded, every epoch), PGD-10 at Linf 0.3 (step
2.5 eps / 10, uniform random start) in eval mode, with the recipe's linear eps warm-up over the
first 3 epochs, for ``--minutes`` of training (no held-out checks); it stops at the first batch
past the budget. The recipe phase runs ``parry train --recipe mnist-pgd-at-ema --minutes M``
(its budget includes its held-out checks, so it has less training time than M). ``evaluate``
runs ``parry evaluate --eps 0.3 -n 1000`` (the AutoAttack-standard preset, 1,000 spread test
points, seed 0) on each trained model (resumable), keeps each run's result with its sidecar in
``benchmarks/results/time_to_accuracy/`` (committed, as the checkpoints are not) and, once both
runs have one, writes ``benchmarks/results/time_to_accuracy.json``. Checkpoints go to
``benchmarks/.cache/time-to-accuracy/`` (git-ignored); a finished phase is not run again.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common  # noqa: E402

from parry.zoo import evaluate_accuracy, make_classifier, save_checkpoint  # noqa: E402

WORK = _common.CACHE / "time-to-accuracy"
RUN_RESULTS = _common.RESULTS / "time_to_accuracy"  # one JSON per evaluated run (AutoAttack + sidecar)
RECIPE = "mnist-pgd-at-ema"
EPS, STEPS, BATCH, LR, WARMUP_EPOCHS, SEED = 0.3, 10, 128, 1e-3, 3, 0
PARRY = [str(Path(sys.executable).parent / "parry")]  # the CLI installed beside this interpreter


def _label(minutes: float) -> str:
    return f"{minutes:g}min".replace(".", "p")  # no dot: checkpoint stems take a suffix


def plain_path(minutes: float) -> Path:
    return WORK / f"plain-{_label(minutes)}"


def recipe_path(minutes: float) -> Path:
    return WORK / f"recipe-{_label(minutes)}"


def train_plain(minutes: float) -> None:
    """The reference loop, written out in eager PyTorch; saves a parry checkpoint."""
    out = plain_path(minutes)
    if out.with_suffix(".safetensors").is_file():
        print(f"{out} exists: skipping the plain loop")
        return
    train = _common.load_mnist("train")
    torch.manual_seed(SEED)
    clf = make_classifier("small-cnn", "mnist")
    model = clf.model
    optimiser = torch.optim.Adam(model.parameters(), lr=LR)
    steps_per_epoch = math.ceil(len(train) / BATCH)
    step, epoch, start = 0, 0, time.perf_counter()
    while time.perf_counter() - start < 60 * minutes:
        for x, y in train.batches(BATCH, shuffle=True, seed=SEED + epoch):
            eps = EPS * min(1.0, step / (WARMUP_EPOCHS * steps_per_epoch))
            _common.plain_pgd_at_step(model, optimiser, x, y, eps, 2.5 * eps / STEPS, STEPS)
            step += 1
            if time.perf_counter() - start >= 60 * minutes:
                break
        epoch += 1
        print(f"epoch {epoch}: {step} steps, {time.perf_counter() - start:.0f} s", flush=True)
    wall = time.perf_counter() - start
    model.eval()
    recipe = {"loop": "plain eager PyTorch PGD-AT (benchmarks/time_to_accuracy.py)", "minutes": minutes,
              "eps": EPS, "steps": STEPS, "alpha": "2.5 eps / steps", "batch_size": BATCH, "optimizer": f"adam {LR}",
              "schedule": "constant", "eps_ramp_epochs": WARMUP_EPOCHS, "seed": SEED,
              "threads": torch.get_num_threads()}
    metrics = {"steps": step, "epochs": step / steps_per_epoch, "wall_time_s": wall,
               "clean_accuracy_test": evaluate_accuracy(clf, _common.load_mnist("test"))}
    WORK.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out, clf, architecture="small-cnn", arch_kwargs={}, dataset="mnist", recipe=recipe,
                    metrics=metrics)
    print(f"wrote {out}: {metrics}")


def train_recipe(minutes: float) -> None:
    subprocess.run([*PARRY, "train", "--recipe", RECIPE, "--minutes", f"{minutes:g}", "--out",
                    str(recipe_path(minutes)), "--resume", "--no-progress", *_mirror()], check=True)


def _mirror() -> list[str]:
    mirror = _common.shared_mirror()
    return ["--mirror", mirror] if mirror else []


def evaluated_row(name: str, stem: Path, model: Path, points: int) -> dict | None:
    """The run's AutoAttack result with its sidecar, from ``RUN_RESULTS`` (kept in git: the
    checkpoints are not) or, the first time, by ``parry evaluate`` on its checkpoint; None when
    the run is not trained yet."""
    row_file = RUN_RESULTS / f"{stem.name}.json"
    if row_file.is_file():
        return json.loads(row_file.read_text())
    if not model.with_suffix(".safetensors").is_file():
        print(f"{model}: not trained yet; run the {name} phase")
        return None
    out = WORK / f"{stem.name}-autoattack.json"
    if not out.is_file():  # (the state file resumes an interrupted evaluation)
        subprocess.run([*PARRY, "evaluate", "--model", str(model), "--eps", f"{EPS:g}", "-n", str(points),
                        "--state", str(out.with_suffix(".state")), "--out", str(out), "--no-progress",
                        *_mirror()], check=True)
    meta = json.loads(model.with_suffix(".json").read_text())
    result = json.loads(out.read_text())
    row = {"model": str(model.relative_to(_common.REPO)), "robust_accuracy": result["robust_accuracy"],
           "stages": {r["stage"]: r["accuracy"] for r in result["table"]}, "recipe": meta["recipe"],
           "metrics": meta["metrics"], "environment": _common.environment()}
    RUN_RESULTS.mkdir(parents=True, exist_ok=True)
    row_file.write_text(json.dumps(row, indent=2, default=str) + "\n")
    print(f"wrote {row_file}")
    return row


def evaluate(plain_minutes: float, recipe_minutes: float, points: int) -> None:
    runs = {"plain": (plain_path(plain_minutes), plain_path(plain_minutes)),
            "recipe": (recipe_path(recipe_minutes), recipe_path(recipe_minutes) / "best")}
    rows = {name: row for name, (stem, model) in runs.items()
            if (row := evaluated_row(name, stem, model, points)) is not None}
    if len(rows) < len(runs):
        raise SystemExit("the comparison needs both models")
    reached = rows["recipe"]["robust_accuracy"] >= rows["plain"]["robust_accuracy"]
    print(f"| run | training minutes | clean (the {points} points) | AutoAttack robust accuracy |\n|---|---|---|---|")
    for name, minutes in (("plain", plain_minutes), ("recipe", recipe_minutes)):
        row = rows[name]
        print(f"| {name} | {minutes:g} | {100 * row['stages']['clean']:.1f} % | {100 * row['robust_accuracy']:.1f} % |")
    print(f"the recipe in {recipe_minutes:g} minutes {'reaches' if reached else 'does not reach'} the plain loop's "
          f"{plain_minutes:g}-minute robust accuracy")
    result = _common.RESULTS / "time_to_accuracy.json"
    result.write_text(json.dumps({"environment": _common.environment(), "eps": EPS, "points": points,
                                  "attack": "autoattack-standard (parry evaluate)", "rows": rows,
                                  "reached": reached}, indent=2, default=str) + "\n")
    print(f"wrote {result}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("phase", choices=["plain", "recipe", "evaluate"])
    parser.add_argument("--minutes", type=float, default=None, help="training budget (plain: 60, recipe: 30)")
    parser.add_argument("--plain-minutes", type=float, default=60.0, help="evaluate: the plain run to judge")
    parser.add_argument("--recipe-minutes", type=float, default=30.0, help="evaluate: the recipe run to judge")
    parser.add_argument("-n", "--points", type=int, default=1000, help="evaluate: spread test points (1000)")
    args = parser.parse_args()
    if args.phase == "plain":
        train_plain(args.minutes or 60.0)
    elif args.phase == "recipe":
        train_recipe(args.minutes or 30.0)
    else:
        evaluate(args.plain_minutes, args.recipe_minutes, args.points)


if __name__ == "__main__":
    main()
