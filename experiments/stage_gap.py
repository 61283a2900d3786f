"""The points a black-box stage broke after the gradient stages, attacked again with restarts.

    .venv/bin/python experiments/stage_gap.py --store runs/s24/mnist.sqlite --model runs/s24/mnist-ard/best

When AutoAttack's Square stage breaks points that APGD-CE, APGD-T and FAB-T all missed, either
the gradient attacks' single run was unlucky (more restarts break the points) or the model's
gradients mislead them there (only the black-box attack finds the way). This script reads the
store's per-point outcomes, takes the points robust after ``--before`` and broken by
``--stage``, and attacks them with white-box attacks given more restarts (APGD-CE and APGD-DLR
with ``--restarts``, APGD-T with 3, PGD-1000 with ``--restarts``; seed 1, where the evaluation
used 0). It prints how many points each leaves robust and how many survive all of them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from parry.attacks.gradient.apgd import APGD, APGDT
from parry.attacks.gradient.pgd import PGD
from parry.data import load
from parry.evaluate import ResultsStore
from parry.zoo import load_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True, help="checkpoint, as evaluated (e.g. .../best)")
    parser.add_argument("--before", default="autoattack-standard/fab-t", help="the last gradient stage")
    parser.add_argument("--stage", default="autoattack-standard/square", help="the stage that broke the points")
    parser.add_argument("--restarts", type=int, default=10)
    parser.add_argument("--mirror", default=None, help="data mirror, e.g. file:///work/shared/data")
    args = parser.parse_args()
    if args.restarts < 1:
        parser.error(f"--restarts: must be >= 1, got {args.restarts}")
    clf, meta = load_checkpoint(args.model)
    name = f"{args.model.parent.name}/{args.model.name}"
    with ResultsStore(args.store, create=False) as db:
        before, stage = (db.outcomes(model=name, attack=a) for a in (args.before, args.stage))
    if len(before) != 1 or len(stage) != 1:
        parser.error(f"--store: expected one series each of {args.before} and {args.stage} for {name}")
    before, stage = before[0], stage[0]
    if not torch.equal(before.test_index, stage.test_index):
        parser.error("--store: the two stages ran on different points")
    gap = before.robust.bool() & ~stage.robust.bool()
    x, y = load(meta["dataset"], "test", mirror=args.mirror).subset(before.test_index[gap]).tensors()
    print(f"{name}: {len(y)} points robust after {args.before}, broken by {args.stage} "
          f"({stage.norm} eps {stage.eps:g})")
    if len(y) == 0:
        return
    r = args.restarts
    attacks = {f"APGD-CE x {r}": APGD(stage.eps, stage.norm, restarts=r, seed=1),
               f"APGD-DLR x {r}": APGD(stage.eps, stage.norm, restarts=r, loss="dlr", seed=1),
               "APGD-T x 3": APGDT(stage.eps, stage.norm, restarts=3, seed=1),
               f"PGD-1000 x {r}": PGD(stage.eps, stage.norm, steps=1000, restarts=r, seed=1)}
    alive = torch.ones(len(y), dtype=torch.bool)
    for label, attack in attacks.items():
        robust = ~attack(clf, x, y).success
        alive &= robust
        print(f"{label}: {int(robust.sum())} of {len(y)} still robust", flush=True)
    print(f"robust to all {len(attacks)}: {int(alive.sum())} of {len(y)}")


if __name__ == "__main__":
    main()
