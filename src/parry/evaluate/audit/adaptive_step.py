"""Check: an adaptive step size does not find much more than PGD with a fixed one.

PGD with a fixed step can stall on a loss surface that a step adapted to it climbs: Croce &
Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks", ICML 2020, section 2 (PGD's fixed step "can overestimate
robustness"; APGD halves its step at checkpoints and restarts from the best point). The
convergence check's stronger PGD (more steps, restarts) is compared with APGD-CE of
``apgd_steps`` iterations on the same points; a large gap means every fixed-step PGD figure
of the model overstates its robustness. The typical catch is a fast FGSM-trained model: on
one MNIST SmallCNN (docs/results.md, stop 13) PGD-40 left 91.9 % and APGD-CE 80.1 %, although
more PGD steps and restarts gained only 2.5 points.
"""

from __future__ import annotations

import time

from .context import AuditContext, accuracy_of
from .convergence import FAIL_DROP, WARN_DROP, drop_verdict
from .verdict import CheckResult


def check_adaptive_step(ctx: AuditContext) -> CheckResult:
    """Warn when APGD-CE is below the strong PGD by more than WARN_DROP (or the slack), fail beyond FAIL_DROP."""
    start = time.perf_counter()
    b = ctx.budget
    strong_k = b.strong_factor * b.pgd_steps
    acc_pgd, acc_apgd = accuracy_of(ctx.strong_pgd()), accuracy_of(ctx.apgd())
    drop = acc_pgd - acc_apgd
    warn_drop = max(WARN_DROP, ctx.slack)
    numbers = {"strong_pgd_accuracy": acc_pgd, "apgd_accuracy": acc_apgd, "apgd_steps": b.apgd_steps,
               "drop": drop, "warn_drop": warn_drop, "fail_drop": FAIL_DROP}
    text = (f"PGD-{strong_k} x {b.strong_restarts} restarts {100 * acc_pgd:.1f} % vs APGD-CE-{b.apgd_steps} "
            f"{100 * acc_apgd:.1f} %")
    verdict, reason = drop_verdict(text, drop, warn_drop, "fixed-step PGD overstates this model's robustness")
    return CheckResult("adaptive_step", verdict, reason, numbers, time.perf_counter() - start)
