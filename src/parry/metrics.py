"""Robustness metrics.

Definitions (used everywhere in Parry's reports):
- clean accuracy: fraction of points classified correctly; error rate = 1 - accuracy.
- adversarial (robust) accuracy: fraction still classified correctly after the attack;
  over several attacks, the per-point worst case (a point counts only if it survives all).
- attack success rate: among the points classified correctly before the attack, the
  fraction the attack turned adversarial (reached the target, for targeted attacks).
- perturbation norms: L0/L1/L2/Linf of ``adv - x`` over successful points only, as mean
  and median.
- every accuracy on n < 10,000 points carries its binomial 95 % (Wilson) interval.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import torch
from torch import Tensor, nn

from .classifier import as_classifier
from .result import NORM_NAMES, AttackResult
from .validation import check_inputs, check_labels, check_logits, check_positive_int


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95 % by default)."""
    if n <= 0:
        raise ValueError(f"n: must be > 0, got {n}")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@torch.no_grad()
def predict(model: nn.Module, x: Tensor, batch_size: int = 512) -> Tensor:
    """Predicted classes of ``x`` in batches, in eval mode (the model's mode is restored)."""
    clf = as_classifier(model)
    check_inputs(x, clf.bounds, clf.input_shape)
    check_positive_int(batch_size, "batch_size")
    preds = []
    with clf.attack_mode():
        for chunk in x.split(batch_size):
            preds.append(check_logits(clf(chunk), chunk.shape[0], clf.num_classes).argmax(dim=1))
    return torch.cat(preds)


def accuracy(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 512) -> float:
    """Clean accuracy of ``model`` on (x, y)."""
    preds = predict(model, x, batch_size)
    y = check_labels(y, x.shape[0], x.device)
    return float((preds == y).float().mean())


def error_rate(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 512) -> float:
    """1 - clean accuracy."""
    return 1.0 - accuracy(model, x, y, batch_size)


def robust_accuracy(result: AttackResult) -> float:
    """Fraction of points still classified correctly after the attack."""
    return float(result.robust.float().mean())


def attack_success_rate(result: AttackResult) -> float:
    """Successes among the points the model classified correctly before the attack (NaN if none)."""
    correct = result.clean_correct
    if not bool(correct.any()):
        return float("nan")
    return float(result.success[correct].float().mean())


def norm_summary(result: AttackResult, only_successful: bool = True) -> dict[str, dict[str, float]]:
    """Mean and median of each perturbation norm over the successful, initially correct points."""
    mask = result.success & result.clean_correct if only_successful else torch.ones_like(result.success)
    out: dict[str, dict[str, float]] = {}
    for name in NORM_NAMES:
        values = result.norms[name][mask].float()
        if values.numel() == 0:
            out[name] = {"mean": float("nan"), "median": float("nan")}
        else:
            out[name] = {"mean": float(values.mean()), "median": float(values.median())}
    return out


def worst_case_robust(results: Sequence[AttackResult]) -> Tensor:
    """Per-point robustness over several attacks on the same points: robust only if robust to all."""
    if len(results) == 0:
        raise ValueError("results: need at least one AttackResult")
    first = results[0]
    for r in results[1:]:
        if r.y.shape != first.y.shape or not torch.equal(r.y, first.y):
            raise ValueError("results: all results must be on the same points (same labels in order)")
    robust = first.robust.clone()
    for r in results[1:]:
        robust &= r.robust
    return robust


def worst_case_accuracy(results: Sequence[AttackResult]) -> float:
    """Robust accuracy as the per-point worst case over several attacks."""
    return float(worst_case_robust(results).float().mean())


def summarize(result: AttackResult) -> dict[str, Any]:
    """All headline figures of one result, with 95 % intervals and the threat model."""
    n = len(result)
    clean_correct = int(result.clean_correct.sum())
    robust = int(result.robust.sum())
    return {
        "attack": result.attack,
        "params": result.params,
        "threat": result.threat.describe(),
        "n": n,
        "clean_accuracy": clean_correct / n,
        "clean_accuracy_ci95": wilson_interval(clean_correct, n),
        "robust_accuracy": robust / n,
        "robust_accuracy_ci95": wilson_interval(robust, n),
        "error_rate": 1 - robust / n,
        "attack_success_rate": attack_success_rate(result),
        "norms": norm_summary(result),
        "queries": result.queries,
        "steps": result.steps,
        "time_s": result.time_s,
    }


def robustness_curve(results: Iterable[AttackResult]) -> list[tuple[float, float]]:
    """(eps, robust accuracy) pairs for results of one attack at several eps."""
    curve = []
    for r in results:
        eps = r.threat.eps
        if not isinstance(eps, float):
            raise ValueError("results: robustness curves need one scalar eps per result")
        curve.append((eps, robust_accuracy(r)))
    return sorted(curve)
