"""Check: the loss has non-zero gradients with respect to the input.

Shattered gradients (a non-differentiable or gradient-free layer: input quantisation,
thresholding, JPEG) and vanishing gradients (a saturated softmax) leave gradient attacks
with nothing to follow: Athalye, Carlini & Wagner, "Obfuscated Gradients Give a False Sense
of Security", ICML 2018, section 3.1; Carlini et al., "On Evaluating Adversarial Robustness",
2019, section 5.2. The check measures, per point, the largest absolute input gradient of
two losses: the cross-entropy (what PGD-CE climbs) and the logit margin
``max_{j != y} z_j - z_y`` (no softmax, so it cannot saturate). A margin gradient of zero
means shattered gradients (attack through the layer with BPDA); a zero cross-entropy
gradient with a live margin gradient means a saturated softmax (attack the margin or DLR
loss, or rescale the logits).
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from ...attacks.losses import margin_loss
from .context import AuditContext, accuracy_of
from .verdict import CheckResult

#: a per-point gradient whose largest entry is below this counts as zero: far below any
#: gradient a float32 attack can use (exp(-69) ~ 1e-30), well above exact zeros and denormals.
ZERO_GRADIENT = 1e-30
#: fraction of points with zero gradients above which the check fails.
FAIL_FRACTION = 0.10
#: fraction above which it warns.
WARN_FRACTION = 0.02


def input_gradient_magnitudes(ctx: AuditContext) -> tuple[torch.Tensor, torch.Tensor]:
    """Per point, ``max |d loss / d x|`` of the cross-entropy and of the margin loss."""
    clf = ctx.classifier
    ce_out, margin_out = [], []
    with clf.attack_mode():
        for xb, yb in zip(ctx.x.split(ctx.batch_size), ctx.y.split(ctx.batch_size)):
            xb = xb.detach().clone().requires_grad_(True)
            logits = clf(xb).float()
            ce = F.cross_entropy(logits, yb, reduction="none").sum()
            g_ce, = torch.autograd.grad(ce, xb, retain_graph=True, allow_unused=True)
            g_margin, = torch.autograd.grad(margin_loss(logits, yb).sum(), xb, allow_unused=True)
            for g, out in ((g_ce, ce_out), (g_margin, margin_out)):
                out.append(torch.zeros(xb.shape[0], device=xb.device) if g is None
                           else g.detach().flatten(1).abs().amax(dim=1).float())
    return torch.cat(ce_out), torch.cat(margin_out)


def check_gradients(ctx: AuditContext) -> CheckResult:
    """Fraction of points whose cross-entropy or margin input gradient is (numerically) zero."""
    start = time.perf_counter()
    ce, margin = input_gradient_magnitudes(ctx)
    zero_ce = accuracy_of(ce < ZERO_GRADIENT)
    zero_margin = accuracy_of(margin < ZERO_GRADIENT)
    numbers = {"zero_fraction_ce": zero_ce, "zero_fraction_margin": zero_margin,
               "median_max_grad_ce": float(ce.median()), "median_max_grad_margin": float(margin.median()),
               "zero_threshold": ZERO_GRADIENT}
    worst = max(zero_ce, zero_margin)
    if zero_margin > FAIL_FRACTION:
        verdict, reason = "fail", (f"{100 * zero_margin:.0f} % of points have zero input gradients even of the "
                                   f"logit margin (> {100 * FAIL_FRACTION:.0f} %): shattered gradients; "
                                   f"attack through the non-differentiable part with BPDA")
    elif zero_ce > FAIL_FRACTION:
        verdict, reason = "fail", (f"{100 * zero_ce:.0f} % of points have zero cross-entropy input gradients "
                                   f"(> {100 * FAIL_FRACTION:.0f} %) while the margin's are live: vanishing "
                                   f"gradients (saturated softmax); attack the margin or DLR loss")
    elif worst > WARN_FRACTION:
        verdict, reason = "warn", (f"{100 * worst:.1f} % of points have zero input gradients "
                                   f"(> {100 * WARN_FRACTION:.0f} %)")
    else:
        verdict, reason = "pass", (f"{100 * worst:.1f} % of points have zero input gradients "
                                   f"(<= {100 * WARN_FRACTION:.0f} %)")
    return CheckResult("gradients", verdict, reason, numbers, time.perf_counter() - start)
