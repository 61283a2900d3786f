"""What mixing a robust classifier with an undefended one could buy: clean and robust accuracy.

    .venv/bin/python experiments/mixing_bound.py --store runs/s34/fashion.sqlite \\
        --robust runs/s34/fashion-pgd5-at-ema-madry-awp-sgd-flip/best --standard runs/s32/fashion-standard/best

Bai et al. (MixedNUTS, TMLR 2024) mix the probabilities of a robust classifier R and an accurate
one S. Here the mix predicts the argmax of a * softmax(s * z_R) + (1 - a) * softmax(z_S), a
temperature s in place of their three-parameter transform of R's logits. Before such a defence
is built and attacked, this script tells whether it can pay on a given pair, for each weight a and
temperature s:

- clean accuracy of the mix, exactly, on the whole test set;
- its robust accuracy on the points where the store holds R's AutoAttack outcomes, against an
  attacker who controls S fully (S undefended: it can be driven to any class), so that S puts all
  its mass on R's strongest wrong class, and moves R to the lowest logit margin that APGD-margin
  and APGD-CE find (100 steps each, no early stop, seed 0). A point counts when it survived
  AutoAttack on R and a * (p_y - max_j p_j) > 1 - a there. A stronger attack on R can only lower
  the figure; an S that cannot be driven that far at the same point would raise it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import Tensor

from parry.attacks.gradient.apgd import APGD
from parry.attacks.losses import margin_loss
from parry.classifier import Classifier
from parry.data import load
from parry.evaluate import ResultsStore
from parry.zoo import load_checkpoint


def logit_margin(logits: Tensor, y: Tensor) -> Tensor:
    """z_y - max_{j != y} z_j per row (the negated margin loss)."""
    return -margin_loss(logits, y)


def mixed_probs(robust_logits: Tensor, standard_logits: Tensor, weight: float, temperature: float) -> Tensor:
    """a * softmax(s * z_R) + (1 - a) * softmax(z_S)."""
    return (weight * torch.softmax(temperature * robust_logits, dim=1)
            + (1 - weight) * torch.softmax(standard_logits, dim=1))


def survives_any_standard(robust_logits: Tensor, y: Tensor, weight: float, temperature: float) -> Tensor:
    """Whether the mix stays correct whatever the standard member outputs: a * (p_y - max_j p_j) > 1 - a."""
    probs = torch.softmax(temperature * robust_logits, dim=1)
    return weight * logit_margin(probs, y) > 1 - weight


def batched_logits(model: Classifier, x: Tensor, batch_size: int) -> Tensor:
    """The model's fp32 logits on ``x``, ``batch_size`` inputs at a time, without gradients."""
    with torch.no_grad():
        return torch.cat([model(batch) for batch in x.split(batch_size)]).float()


def lowest_margin_logits(model: Classifier, x: Tensor, y: Tensor, eps: float, norm: str) -> Tensor:
    """R's logits at the lowest-margin point APGD-margin and APGD-CE find (100 steps each, no early stop)."""
    worst = None
    for loss in ("margin", "ce"):
        adv = APGD(eps, norm, steps=100, loss=loss, seed=0).generate(model, x, y)  # full budget, no early stop
        logits = batched_logits(model, adv, 500)
        if worst is None:
            worst = logits
        else:
            lower = logit_margin(logits, y) < logit_margin(worst, y)
            worst[lower] = logits[lower]
    return worst


def _fractions(text: str, name: str, low: float, high: float) -> list[float]:
    values = [float(v) for v in text.split(",")]
    if not all(low < v <= high for v in values):
        raise argparse.ArgumentTypeError(f"{name}: every value must lie in ({low:g}, {high:g}], got {text}")
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", type=Path, required=True, help="holds R's AutoAttack outcomes")
    parser.add_argument("--robust", type=Path, required=True, help="R's checkpoint, as evaluated (e.g. .../best)")
    parser.add_argument("--standard", type=Path, required=True, help="S's checkpoint")
    parser.add_argument("--attack", default="autoattack-standard")
    parser.add_argument("--weights", type=lambda t: _fractions(t, "--weights", 0.5, 1.0),
                        default="0.6,0.7,0.8,0.9,0.95",
                        help="weights a of R, each in (0.5, 1]: at 0.5 or less no point survives the bound")
    parser.add_argument("--temperatures", type=lambda t: _fractions(t, "--temperatures", 0.0, 100.0),
                        default="1,2,4,8")
    parser.add_argument("--mirror", default=None, help="data mirror, e.g. file:///work/shared/data")
    args = parser.parse_args()
    robust, meta = load_checkpoint(args.robust)
    standard, standard_meta = load_checkpoint(args.standard)
    if standard_meta["dataset"] != meta["dataset"]:
        parser.error(f"--standard: trained on {standard_meta['dataset']}, R on {meta['dataset']}")
    name = f"{args.robust.parent.name}/{args.robust.name}"
    with ResultsStore(args.store, create=False) as db:
        series = db.outcomes(model=name, attack=args.attack)
    if len(series) != 1:
        parser.error(f"--store: expected one series of {args.attack} for {name}, found {len(series)}")
    outcome = series[0]
    test = load(meta["dataset"], "test", mirror=args.mirror)
    x, y = test.tensors()
    z_robust, z_standard = batched_logits(robust, x, 1000), batched_logits(standard, x, 1000)
    points = outcome.test_index.long()
    worst = lowest_margin_logits(robust, x[points], y[points], outcome.eps, outcome.norm)
    held = outcome.robust.bool()
    print(f"R {name}: clean {100 * (z_robust.argmax(1) == y).float().mean():.2f} % of {len(y)}; on {len(points)} "
          f"points {args.attack} {100 * held.float().mean():.1f} %, margin > 0 at the lowest-margin point "
          f"{100 * (logit_margin(worst, y[points]) > 0).float().mean():.1f} % ({outcome.norm} eps {outcome.eps:g})")
    print(f"S {args.standard}: clean {100 * (z_standard.argmax(1) == y).float().mean():.2f} %")
    print("| a | s | clean | robust, S controlled |\n|---|---|---|---|")
    for temperature in args.temperatures:
        for weight in args.weights:
            clean = (mixed_probs(z_robust, z_standard, weight, temperature).argmax(1) == y).float().mean()
            bound = held & survives_any_standard(worst, y[points], weight, temperature)
            print(f"| {weight:g} | {temperature:g} | {100 * clean:.2f} % | {100 * bound.float().mean():.1f} % |")


if __name__ == "__main__":
    main()
