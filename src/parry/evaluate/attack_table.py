"""Attack a model at several eps and tabulate the figures every report needs.

Each row carries its threat model (norm, eps), the attack with all its parameters,
the number of points, the seed, and the 95 % interval of every accuracy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .. import metrics
from ..attacks.base import Attack
from ..classifier import as_classifier
from ..result import AttackResult
from ..validation import check_positive_int


@dataclass(frozen=True)
class AttackSpec:
    """A named attack factory: ``make(eps)`` returns a configured Attack."""

    label: str
    make: Callable[[float], Attack]


def attack_in_batches(attack: Attack, model: nn.Module, x: Tensor, y: Tensor,
                      batch_size: int = 256, progress: bool = False, desc: str = "") -> AttackResult:
    """Run ``attack`` over (x, y) in batches and join the results."""
    check_positive_int(batch_size, "batch_size")
    chunks = list(zip(x.split(batch_size), y.split(batch_size)))
    results = [attack(model, xb, yb) for xb, yb in tqdm(chunks, desc=desc, disable=not progress, leave=False)]
    return AttackResult.concat(results)


def evaluate_attacks(model: nn.Module, x: Tensor, y: Tensor, specs: Sequence[AttackSpec],
                     eps_values: Sequence[float], *, batch_size: int = 256, seed: int = 0,
                     progress: bool = True) -> list[dict[str, Any]]:
    """One row per (attack, eps): clean and robust accuracy, success rate, norms, time."""
    if not specs:
        raise ValueError("specs: need at least one attack")
    if not eps_values:
        raise ValueError("eps_values: need at least one eps")
    clf = as_classifier(model)
    rows = []
    for spec in specs:
        for eps in eps_values:
            torch.manual_seed(seed)
            result = attack_in_batches(spec.make(eps), clf, x, y, batch_size, progress,
                                       desc=f"{spec.label} eps={eps:g}")
            summary = metrics.summarize(result)
            rows.append({**summary, "attack": spec.label, "attack_class": summary["attack"], "seed": seed})
    return rows


def _pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:.1f}"


def _num(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"


def rows_to_markdown(rows: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of :func:`evaluate_attacks` rows."""
    header = ("| attack | norm | eps | n | clean acc % | robust acc % (95% CI) | success rate % | "
              "mean / median Linf | mean / median L2 | time s |")
    lines = [header, "|" + "---|" * 10]
    for r in rows:
        lo, hi = r["robust_accuracy_ci95"]
        norms = r["norms"]
        lines.append(
            f"| {r['attack']} | {r['threat']['norm']} | {r['threat']['eps']:g} | {r['n']} | "
            f"{_pct(r['clean_accuracy'])} | {_pct(r['robust_accuracy'])} ({_pct(lo)}-{_pct(hi)}) | "
            f"{_pct(r['attack_success_rate'])} | {_num(norms['linf']['mean'])} / {_num(norms['linf']['median'])} | "
            f"{_num(norms['l2']['mean'])} / {_num(norms['l2']['median'])} | {r['time_s']:.1f} |")
    return "\n".join(lines)
