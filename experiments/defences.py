"""The defences side by side (issue 7): train every recipe of a data set, attack each model with
FGSM, PGD-40 and the AutoAttack-standard equivalent on the same test points, audit it for
gradient masking, certify the Lipschitz networks, and write the table of ``docs/results.md``.

    OMP_NUM_THREADS=1 .venv/bin/python experiments/defences.py --dataset mnist
    OMP_NUM_THREADS=1 .venv/bin/python experiments/defences.py --dataset fashion --rows standard,pgd-at
    OMP_NUM_THREADS=2 .venv/bin/python experiments/defences.py --dataset cifar10-jpeg --rows pgd-at

Every step is one ``parry`` command (printed before it runs) and resumable: a finished training
run, evaluation or audit is read back, not redone, so an interrupted experiment continues where
it stopped when the same command is run again. Outputs go to ``runs/results/`` (git-ignored):
``<recipe>/`` (checkpoints, log), ``<prefix>.sqlite`` (the results store), ``<recipe>/audit.json``,
``<recipe>/certified.json`` and ``<prefix>-table.md``.

``--dataset cifar10-jpeg`` runs the CIFAR-10 recipes (Linf 8/255) on the JPEG copy of
``../shared/data`` (or the official files where ``parry.data`` finds them).

Evaluation points: ``--points`` (default 1,000) test images spread evenly over the test set
(every 10th from the first); clean accuracy on the whole test split.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SETS = {"mnist": ("mnist", 0.3), "fashion": ("fashion-mnist", 0.1), "cifar10-jpeg": ("cifar10", 8 / 255)}
# every row of the tables; a data set runs those it has recipes for
ROWS = ("standard", "pgd-at", "pgd-at-ema", "pgd-at-ema-madry", "pgd-at-ema-madry-crop", "pgd-at-ema-madry-awp",
        "pgd-at-ema-madry-awp-flip", "pgd5-at-ema-madry-awp-flip", "pgd5-at-ema-madry15-awp-flip",
        "pgd5-at-ema-madry-awp2-flip", "kd-at-ema-madry-awp-flip", "mixed20-at-ema-madry-awp-flip",
        "pgd-at-ema-madry-awp-sgd", "pgd5-at-ema-madry-awp-sgd-flip", "pgd5-at-ema-madry-awp-adamw-flip",
        "trades5-ema-madry-awp-flip", "pgd-at-ema-madry-awp-silu", "hat-madry", "hat-madry-flip", "hat-madry-awp-sgd",
        "pgd7-at", "fgsm-rs", "trades", "mart", "gradient-reg", "gradient-reg-lipschitz", "lipschitz", "lipschitz-r158",
        "distillation-teacher", "distillation", "ard", "pgd-at-lenet")
OUT = REPO / "runs" / "results"  # --out
RADII = (0.5, 1.58)  # certified L2 radii of the Lipschitz rows (1.58: the published comparison point)


def parry(*args: str, dry: bool = False) -> None:
    """Run one ``parry`` command (the CLI of this checkout's interpreter), echoing it first."""
    command = [str(Path(sys.executable).with_name("parry")), *args]
    print("$ parry " + shlex.join(args), flush=True)
    if not dry:
        subprocess.run(command, check=True, cwd=REPO)


def mirror() -> str | None:
    """The team's shared data copy as a ``file://`` mirror (unless $PARRY_MIRROR chooses one)."""
    shared = REPO.parent / "shared" / "data"
    return shared.as_uri() if shared.is_dir() and not os.environ.get("PARRY_MIRROR") else None


def mirror_args() -> list[str]:
    url = mirror()
    return [] if url is None else ["--mirror", url]


def train(recipe: str, teachers: tuple[str, ...], args: argparse.Namespace) -> Path:
    out = OUT / recipe
    extra = [arg for teacher in teachers for arg in ("--teacher", str(OUT / teacher / "best"))]
    budget = [] if args.epochs is None else ["--epochs", str(args.epochs)]
    budget += [] if args.limit is None else ["--limit", str(args.limit)]
    if not _finished(out):
        parry("train", "--recipe", recipe, "--out", str(out), "--resume", "--no-progress", "--seed", str(args.seed),
              *budget, *extra, *mirror_args(), dry=args.dry_run)
    return out


def _finished(out: Path) -> bool:
    """Whether the training run in ``out`` has ended (then it is not started again, even when
    the catalogue's recipe was edited since: its sidecars keep the recipe it ran)."""
    state = out / "resume.json"
    return state.is_file() and bool(json.loads(state.read_text()).get("meta", {}).get("finished"))


def evaluate(model: Path, store: Path, eps: float, args: argparse.Namespace) -> None:
    parry("evaluate", "--store", str(store), "--model", str(model / "best"), "--eps", str(eps),
          "--attacks", f"fgsm,pgd:steps=40,autoattack-{args.preset}", "-n", str(args.points), "--no-progress",
          *mirror_args(), dry=args.dry_run)


def audit(model: Path, eps: float, args: argparse.Namespace, surrogate: Path) -> None:
    if not (model / "audit.json").is_file():
        parry("audit", "--model", str(model / "best"), "--eps", str(eps), "-n", str(args.audit_points),
              "--surrogate", str(surrogate / "best"), "--out", str(model / "audit.json"), *mirror_args(),
              dry=args.dry_run)


def certify(model: Path, args: argparse.Namespace) -> dict[float, float]:
    """Certified L2 accuracy of a Lipschitz network on the evaluation points (provable bound)."""
    import torch

    from parry.cli.options import checkpoint_and_points
    from parry.defenses.lipschitz import certified_accuracy, lipschitz_bound

    path = model / "certified.json"
    if not path.is_file():
        clf, _, _, x, y = checkpoint_and_points(str(model / "best"), args.points, torch.device("cpu"), None,
                                                mirror())
        bound = lipschitz_bound(clf)
        cert = certified_accuracy(clf, x, y, RADII, bound)
        path.write_text(json.dumps({"lipschitz_bound": bound, "points": args.points,
                                    "certified_accuracy": {str(r): a for r, a in cert.items()}}, indent=2))
    return {float(r): a for r, a in json.loads(path.read_text())["certified_accuracy"].items()}


def clean_test_accuracy(model: Path) -> float:
    """Clean accuracy on the whole test split (cached in ``clean.json``)."""
    path = model / "clean.json"
    if not path.is_file():
        from parry import data
        from parry.zoo import evaluate_accuracy, load_checkpoint

        clf, meta = load_checkpoint(model / "best")
        test = data.load(meta["dataset"], "test", mirror=mirror())
        path.write_text(json.dumps({"clean_accuracy": evaluate_accuracy(clf, test), "n": len(test)}))
    return json.loads(path.read_text())["clean_accuracy"]


def training_minutes(model: Path) -> float:
    """The run's wall-clock minutes as the Trainer counted them (epochs, held-out checks, checkpoints)."""
    state = json.loads((model / "resume.json").read_text())
    return state["meta"]["elapsed_s"] / 60.0


def table(prefix: str, store: Path) -> str:
    """The side-by-side table of every row evaluated so far (in the order of ROWS)."""
    from parry.evaluate import ResultsStore, accuracy_table

    with ResultsStore(store) as db:
        acc = accuracy_table(db)
    lines = ["| defence | clean (test) | clean error | FGSM | PGD-40 | AutoAttack | AA error | audit | "
             f"certified L2 {' / '.join(f'{r:g}' for r in RADII)} | train min |", "|---" * 10 + "|"]
    for row in ROWS:
        model = OUT / f"{prefix}-{row}"
        mine = [r for r in acc if r["model"] == f"{prefix}-{row}/best"]
        if row == "distillation-teacher" or not mine:
            continue
        names = {"ensemble": "AutoAttack", "pgd": "PGD-40", "fgsm": "FGSM"}
        by = {names[k]: r["robust_accuracy"] for r in mine
              if (k := "ensemble" if r["kind"] == "ensemble" else r["attack"].lower()) in names}
        verdict = json.loads((model / "audit.json").read_text())["verdict"] if (model / "audit.json").is_file() else "-"
        clean = clean_test_accuracy(model)
        aa = by.get("AutoAttack")
        cells = [row, f"{100 * clean:.2f}", f"{100 * (1 - clean):.2f}", *(
            f"{100 * by[k]:.1f}" if k in by else "-" for k in ("FGSM", "PGD-40", "AutoAttack")),
            "-" if aa is None else f"{100 * (1 - aa):.1f}", verdict, _certified(model),
            f"{training_minutes(model):.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _certified(model: Path) -> str:
    path = model / "certified.json"
    if not path.is_file():
        return "-"
    cert = json.loads(path.read_text())["certified_accuracy"]
    return " / ".join(f"{100 * cert[str(r)]:.1f}" for r in RADII)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=sorted(SETS), required=True)
    parser.add_argument("--rows", default=None,
                        help=f"comma-separated, of {', '.join(ROWS)} (default: all the data set has)")
    parser.add_argument("--points", type=int, default=1000, help="evaluation points, spread (default 1000)")
    parser.add_argument("--audit-points", type=int, default=200, help="audit points, spread (default 200)")
    parser.add_argument("--preset", choices=("standard", "fast"), default="standard")
    parser.add_argument("--epochs", type=int, default=None, help="override every recipe's budget (smoke runs)")
    parser.add_argument("--limit", type=int, default=None, help="train on this many images (smoke runs)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of every training run (default 0); give each seed its own --out")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "results", help="default: runs/results")
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    args = parser.parse_args()
    from parry.defenses.training.recipes import RECIPES

    valid = [r for r in ROWS if f"{args.dataset}-{r}" in RECIPES]
    rows = valid if args.rows is None else [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = sorted(set(rows) - set(valid))
    if unknown:
        parser.error(f"--rows: unknown for {args.dataset}: {unknown}; valid: {', '.join(valid)}")
    dataset, eps = SETS[args.dataset]

    global OUT
    OUT = args.out.resolve()
    OUT.mkdir(parents=True, exist_ok=True)
    store = OUT / f"{args.dataset}.sqlite"
    surrogate = train(f"{args.dataset}-standard", (), args)
    for row in rows:
        recipe = RECIPES[f"{args.dataset}-{row}"]
        model = train(recipe.name, recipe.teachers, args)
        if args.dry_run or row == "distillation-teacher":
            continue
        evaluate(model, store, eps, args)
        audit(model, eps, args, surrogate)
        if recipe.architecture == "lipschitz-mnist":
            print(f"{recipe.name}: certified L2 accuracy {certify(model, args)}", flush=True)
    if not args.dry_run:
        text = table(args.dataset, store)
        (OUT / f"{args.dataset}-table.md").write_text(text)
        print(text)


if __name__ == "__main__":
    main()
