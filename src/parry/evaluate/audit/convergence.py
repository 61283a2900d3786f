"""Check: more steps and random restarts do not help much.

A converged attack gains little from a larger budget; a big further drop means the reported
attack had not converged and its number overstates robustness: Carlini et al., "On
Evaluating Adversarial Robustness", 2019, section 5.2 ("verify iterative attacks have
converged", "use random restarts"); Croce & Hein, "Reliable evaluation of adversarial
robustness with an ensemble of diverse parameter-free attacks", ICML 2020 (PGD with a fixed
step size under-reports). PGD-k is compared with PGD of ``strong_factor * k`` steps and
``strong_restarts`` restarts.
"""

from __future__ import annotations

import time

from .context import AuditContext, accuracy_of, exceeds
from .verdict import CheckResult

#: drop (as a fraction of the points) of the stronger PGD below PGD-k that fails / warns. A few
#: points are normal for a short PGD on an adversarially trained model (PGD-10 vs PGD-40 x 2 on
#: a PGD-trained MNIST LeNet: 3 points); tens of points mean the attack was far from converged.
FAIL_DROP = 0.10
WARN_DROP = 0.05


def drop_verdict(text: str, drop: float, warn_drop: float, fail_note: str, warn_note: str = "") -> tuple[str, str]:
    """``(verdict, reason)`` of a check whose stronger attack lowers accuracy by ``drop``: fail
    beyond FAIL_DROP (the reason ends with ``fail_note``), warn beyond ``warn_drop``, else pass."""
    if exceeds(drop, FAIL_DROP):
        return "fail", f"{text}: {100 * drop:.1f} points lower (> {100 * FAIL_DROP:.0f}); {fail_note}"
    if exceeds(drop, warn_drop):
        return "warn", f"{text}: {100 * drop:.1f} points lower (> {100 * warn_drop:.0f}){warn_note}"
    return "pass", f"{text}: drop {100 * drop:.1f} points (<= {100 * warn_drop:.0f})"


def check_convergence(ctx: AuditContext) -> CheckResult:
    """Warn when the stronger PGD lowers accuracy by more than WARN_DROP (or the slack), fail beyond FAIL_DROP."""
    start = time.perf_counter()
    b = ctx.budget
    k, strong_k = b.pgd_steps, b.strong_factor * b.pgd_steps
    acc_k, acc_strong = accuracy_of(ctx.pgd()), accuracy_of(ctx.strong_pgd())
    drop = acc_k - acc_strong
    warn_drop = max(WARN_DROP, ctx.slack)
    numbers = {f"pgd{k}_accuracy": acc_k, "strong_accuracy": acc_strong, "strong_steps": strong_k,
               "strong_restarts": b.strong_restarts, "drop": drop, "warn_drop": warn_drop, "fail_drop": FAIL_DROP}
    text = (f"PGD-{k} {100 * acc_k:.1f} % vs PGD-{strong_k} x {b.strong_restarts} restarts "
            f"{100 * acc_strong:.1f} %")
    verdict, reason = drop_verdict(text, drop, warn_drop, "the attack had not converged", "; not converged")
    return CheckResult("convergence", verdict, reason, numbers, time.perf_counter() - start)
