"""Check: an iterative attack is at least as strong as a single step.

PGD contains FGSM's step as a special case and takes many more; when FGSM fools more points
than PGD, the loss surface is not what the gradient suggests (gradient masking), or PGD is
misconfigured: Athalye, Carlini & Wagner, "Obfuscated Gradients Give a False Sense of
Security", ICML 2018, section 3.1 ("one-step attacks perform better than iterative
attacks"); Carlini et al., "On Evaluating Adversarial Robustness", 2019, section 5.
"""

from __future__ import annotations

import time

from .context import AuditContext, accuracy_of, exceeds
from .verdict import CheckResult


def check_single_step(ctx: AuditContext) -> CheckResult:
    """PGD-k robust accuracy must not exceed FGSM's by more than the slack (fail); warn when FGSM
    fools more than the slack of points that PGD-k leaves alone."""
    start = time.perf_counter()
    fgsm, pgd = ctx.fgsm(), ctx.pgd()
    acc_fgsm, acc_pgd = accuracy_of(fgsm), accuracy_of(pgd)
    only_fgsm = accuracy_of(~fgsm & pgd)
    k = ctx.budget.pgd_steps
    numbers = {"fgsm_accuracy": acc_fgsm, f"pgd{k}_accuracy": acc_pgd, "pgd_steps": k,
               "fooled_by_fgsm_only": only_fgsm, "slack": ctx.slack}
    gap = acc_pgd - acc_fgsm
    text = f"PGD-{k} {100 * acc_pgd:.1f} % vs FGSM {100 * acc_fgsm:.1f} %"
    if exceeds(gap, ctx.slack):
        verdict, reason = "fail", (f"{text}: the single step is stronger by {100 * gap:.1f} points "
                                   f"(> {100 * ctx.slack:.0f}): gradient masking or a broken iterative attack")
    elif exceeds(only_fgsm, ctx.slack):
        verdict, reason = "warn", (f"{text}, but FGSM fools {100 * only_fgsm:.1f} % of points that PGD-{k} "
                                   f"misses (> {100 * ctx.slack:.0f} %)")
    else:
        verdict, reason = "pass", (f"{text}: iterative at least as strong" if gap <= 0
                                   else f"{text}: within the slack of {100 * ctx.slack:.0f} points")
    return CheckResult("single_step", verdict, reason, numbers, time.perf_counter() - start)
