"""Check: the model returns logits, not probabilities, and its softmax is not saturated.

Attacking softmax outputs instead of logits, or logits so large that the softmax saturates
in float32, makes the cross-entropy flat and its gradients vanish: Carlini & Wagner,
"Defensive Distillation is Not Robust to Adversarial Examples", 2016, and "Towards
Evaluating the Robustness of Neural Networks", IEEE S&P 2017 (defensive distillation
deployed at temperature 1); Athalye, Carlini & Wagner, ICML 2018, section 3.1 (vanishing
gradients); Carlini et al., "On Evaluating Adversarial Robustness", 2019. A point is
*saturated* when its two largest logits are more than ``SATURATION_GAP`` apart: every other
class then has a float32 softmax probability below exp(-69) ~ 1e-30, so the cross-entropy
gradient is numerically zero.
"""

from __future__ import annotations

import time

import torch

from .context import AuditContext, accuracy_of
from .verdict import CheckResult

#: top-2 logit gap (nats) above which a point's softmax counts as saturated.
SATURATION_GAP = 69.0
#: fraction of saturated points above which the check fails / warns.
FAIL_FRACTION = 0.10
WARN_FRACTION = 0.02
#: how far a row's sum of probabilities (or its log-sum-exp) may be from 1 (from 0).
NORMALISED_TOL = 1e-3


def _logits(ctx: AuditContext) -> torch.Tensor:
    clf = ctx.classifier
    with clf.attack_mode(), torch.no_grad():
        return torch.cat([clf(xb).float() for xb in ctx.x.split(ctx.batch_size)])


def check_logits(ctx: AuditContext) -> CheckResult:
    """Flag probability or log-probability outputs and a saturated softmax."""
    start = time.perf_counter()
    z = _logits(ctx)
    top2 = z.topk(2, dim=1).values
    gap = top2[:, 0] - top2[:, 1]
    saturated = accuracy_of(gap > SATURATION_GAP)
    probabilities = bool(((z >= -1e-6) & (z <= 1 + 1e-6)).all()) and \
        bool(((z.sum(dim=1) - 1).abs() <= NORMALISED_TOL).all())
    log_probabilities = bool((z <= 1e-6).all()) and bool((z.logsumexp(dim=1).abs() <= NORMALISED_TOL).all())
    numbers = {"probabilities": probabilities, "log_probabilities": log_probabilities,
               "saturated_fraction": saturated, "median_top2_gap": float(gap.median()),
               "median_abs_logit": float(z.abs().median()), "max_abs_logit": float(z.abs().max()),
               "saturation_gap": SATURATION_GAP}
    if probabilities:
        verdict, reason = "fail", ("outputs are non-negative and sum to 1 per row: the model returns softmax "
                                   "probabilities; attack its logits (remove the final softmax)")
    elif saturated > FAIL_FRACTION:
        verdict, reason = "fail", (f"{100 * saturated:.0f} % of points have a top-2 logit gap > {SATURATION_GAP:g} "
                                   f"(median {float(gap.median()):.3g}): the softmax saturates and cross-entropy "
                                   f"gradients vanish; attack the margin or DLR loss or rescale the logits")
    elif log_probabilities:
        verdict, reason = "warn", ("outputs are log-probabilities (log-sum-exp 0 per row), not logits: fine for "
                                   "CE, margin and DLR losses, but confirm no softmax is applied twice")
    elif saturated > WARN_FRACTION:
        verdict, reason = "warn", (f"{100 * saturated:.1f} % of points have a saturated softmax "
                                   f"(top-2 logit gap > {SATURATION_GAP:g})")
    else:
        verdict, reason = "pass", (f"logits (median top-2 gap {float(gap.median()):.3g}, "
                                   f"{100 * saturated:.1f} % saturated)")
    return CheckResult("logits", verdict, reason, numbers, time.perf_counter() - start)
