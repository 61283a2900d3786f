"""Certified against empirical L2 robustness of a Lipschitz network, point by point.

    parry evaluate --store runs/results/mnist-l2.sqlite --model runs/results/mnist-lipschitz-r158/best \\
        --norm l2 --eps 0.5 --eps 1.58 --attacks autoattack-standard -n 1000
    .venv/bin/python experiments/certified_vs_empirical.py --store runs/results/mnist-l2.sqlite \\
        --model runs/results/mnist-lipschitz-r158/best

Reads the store's AutoAttack outcomes at every L2 radius, certifies the same test points with
the margin certificate (Tsuzuku et al. 2018) and the provable bound of ``lipschitz_bound``, and
prints per radius the certified accuracy, the AutoAttack robust accuracy and the number of
points certified yet broken, which must be zero (a certificate an attack beats is a bug).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from parry.data import load
from parry.defenses.lipschitz import lipschitz_bound, margin_certificate
from parry.evaluate import ResultsStore
from parry.zoo import load_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, required=True, help="store with the L2 AutoAttack outcomes")
    parser.add_argument("--model", type=Path, required=True, help="checkpoint, as evaluated (e.g. .../best)")
    parser.add_argument("--attack", default="autoattack-standard")
    parser.add_argument("--mirror", default=None, help="data mirror, e.g. file:///work/shared/data")
    args = parser.parse_args()
    clf, meta = load_checkpoint(args.model)
    name = f"{args.model.parent.name}/{args.model.name}"
    with ResultsStore(args.store, create=False) as db:
        series = db.outcomes(model=name, attack=args.attack, norm="l2")
    if not series:
        parser.error(f"--store: no L2 {args.attack} outcomes of {name} in {args.store}")
    bound = lipschitz_bound(clf)
    test = load(meta["dataset"], "test", mirror=args.mirror)
    print(f"{name}: provable Lipschitz bound {bound:.4f}")
    print("| L2 radius | points | certified % | AutoAttack robust % | certified but broken |")
    print("|---|---|---|---|---|")
    for s in sorted(series, key=lambda s: s.eps):
        x, y = test.subset(s.test_index).tensors()
        with torch.no_grad():
            certified = margin_certificate(clf(x), bound, y) > s.eps
        broken = int((certified & ~s.robust.bool()).sum())
        print(f"| {s.eps:g} | {len(y)} | {100 * certified.float().mean():.1f} | "
              f"{100 * s.robust.float().mean():.1f} | {broken} |")


if __name__ == "__main__":
    main()
