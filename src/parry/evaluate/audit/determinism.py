"""Check: the forward pass is deterministic.

A model that draws fresh randomness on every call (random resizing and padding, input
noise, stochastic activations) gives each gradient step a different function to climb,
which defeats plain gradient attacks without making the model robust: Athalye, Carlini &
Wagner, "Obfuscated Gradients Give a False Sense of Security", ICML 2018, section 4.3
(stochastic gradients). Such a model must be attacked with Expectation over
Transformation (EOT, ``parry.attacks.adaptive.eot_classifier``).
"""

from __future__ import annotations

import time

import torch

from .context import AuditContext, accuracy_of
from .verdict import CheckResult

#: relative logit difference above which the model is called randomised (fail).
FAIL_RELATIVE = 1e-4
#: relative logit difference above which non-determinism is reported (warn): more than
#: the float32 reduction-order noise of GPU kernels, far less than any deliberate randomness.
WARN_RELATIVE = 1e-6


def check_determinism(ctx: AuditContext) -> CheckResult:
    """Run the same inputs through the model twice (eval mode) and compare the logits."""
    start = time.perf_counter()
    clf = ctx.classifier
    first, second = [], []
    with clf.attack_mode(), torch.no_grad():
        for xb in ctx.x.split(ctx.batch_size):
            first.append(clf(xb).float())
            second.append(clf(xb.clone()).float())
    a, b = torch.cat(first), torch.cat(second)
    max_abs = float((a - b).abs().max())
    relative = max_abs / max(float(a.abs().max()), 1e-12)
    flipped = accuracy_of(a.argmax(1) != b.argmax(1))
    numbers = {"max_abs_logit_diff": max_abs, "relative_diff": relative, "prediction_flip_rate": flipped}
    if relative > FAIL_RELATIVE or flipped > 0:
        verdict, reason = "fail", (f"two passes over the same inputs differ (relative logit difference "
                                   f"{relative:.2g} > {FAIL_RELATIVE:g}, {100 * flipped:.1f} % of predictions "
                                   f"flip): the model is randomised; attack it with EOT")
    elif relative > WARN_RELATIVE:
        verdict, reason = "warn", (f"two passes differ slightly (relative {relative:.2g} > {WARN_RELATIVE:g}); "
                                   f"non-deterministic kernels or hidden randomness")
    else:
        verdict, reason = "pass", f"two passes agree (relative logit difference {relative:.2g} <= {WARN_RELATIVE:g})"
    return CheckResult("determinism", verdict, reason, numbers, time.perf_counter() - start)
