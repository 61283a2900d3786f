"""Check: white-box attacks beat black-box, transfer and random-noise attacks.

A white-box attack knows everything a black-box attack, a transfer attack or random noise
knows, and more; when one of them fools more points, the gradients mislead (the classic sign
of gradient masking): Athalye, Carlini & Wagner, "Obfuscated Gradients Give a False Sense of
Security", ICML 2018, section 3.1 ("black-box attacks are better than white-box attacks");
Carlini et al., "On Evaluating Adversarial Robustness", 2019, section 5; Tramer et al.,
"Ensemble Adversarial Training", ICLR 2018 (transfer beating white-box on masked models).
White-box is the per-point worst case over FGSM, PGD-k, the stronger PGD and APGD-CE; black-box is
Square (Andriushchenko et al., ECCV 2020, margin loss); transfer is PGD crafted on a
surrogate; noise is the worst of uniform draws from the eps-ball.
"""

from __future__ import annotations

import time

import torch

from .context import AuditContext, accuracy_of, exceeds
from .verdict import CheckResult


def check_attack_order(ctx: AuditContext) -> CheckResult:
    """Fail when black-box, transfer or noise accuracy is below white-box accuracy by more than the slack."""
    start = time.perf_counter()
    white = ctx.whitebox()
    others = {"square": ctx.square(), "transfer": ctx.transfer(), "noise": ctx.noise()}
    numbers: dict = {"whitebox_accuracy": accuracy_of(white), "slack": ctx.slack,
                     "square_queries": ctx.budget.square_queries, "noise_draws": ctx.budget.noise_draws}
    missed = torch.zeros_like(white)
    beaten, skipped = [], []
    for name, mask in others.items():
        if mask is None:
            numbers[f"{name}_accuracy"] = None
            skipped.append(name)
            continue
        acc = accuracy_of(mask)
        numbers[f"{name}_accuracy"] = acc
        missed |= white & ~mask
        if exceeds(numbers["whitebox_accuracy"] - acc, ctx.slack):
            beaten.append(f"{name} {100 * acc:.1f} %")
    numbers["missed_by_whitebox"] = accuracy_of(missed)
    white_text = f"white-box {100 * numbers['whitebox_accuracy']:.1f} %"
    note = f" ({', '.join(skipped)} not run)" if skipped else ""
    if beaten:
        verdict, reason = "fail", (f"{', '.join(beaten)} below {white_text} by more than {100 * ctx.slack:.0f} "
                                   f"points: gradients mislead the white-box attack{note}")
    elif exceeds(numbers["missed_by_whitebox"], ctx.slack):
        verdict, reason = "warn", (f"{white_text} is strongest overall, but other attacks fool "
                                   f"{100 * numbers['missed_by_whitebox']:.1f} % of points it misses{note}")
    else:
        parts = [f"{name} {100 * numbers[f'{name}_accuracy']:.1f} %" for name in others if name not in skipped]
        verdict, reason = "pass", (f"{white_text}; {', '.join(parts)}: none lower by more than "
                                   f"{100 * ctx.slack:.0f} points{note}")
    return CheckResult("attack_order", verdict, reason, numbers, time.perf_counter() - start)
