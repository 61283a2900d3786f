"""Check: accuracy falls monotonically with eps and reaches chance at a large radius.

With an unbounded budget every input of the box can be reached, so a correct attack must
drive accuracy to (at most) chance; a curve that is not monotone, or that stays high at a
large radius, shows the attack is failing rather than the model resisting: Athalye, Carlini
& Wagner, "Obfuscated Gradients Give a False Sense of Security", ICML 2018, section 3.1
("unbounded attacks do not reach 100 % success", "increasing distortion bound does not
increase success"); Carlini et al., "On Evaluating Adversarial Robustness", 2019, section 5.
PGD-k runs at ``budget.ladder`` multiples of eps and at the diameter of the input box
(1.0 for Linf on [0, 1]).
"""

from __future__ import annotations

import time

from .context import AuditContext, accuracy_of, exceeds
from .verdict import CheckResult

#: how far above chance (1 / num_classes) the accuracy at the box's diameter may stay.
CHANCE_MARGIN = 0.10


def eps_ladder(ctx: AuditContext) -> list[float]:
    """The radii of the sweep: ``ladder * eps`` below the box's diameter, eps, and the diameter."""
    top, eps = ctx.max_radius, ctx.eps
    radii = {round(m * eps, 10) for m in ctx.budget.ladder if 0 < m * eps < top}
    radii = {r for r in radii if r != round(eps, 10)}  # eps itself goes in unrounded: its PGD run is shared
    radii |= {min(eps, top), top}
    return sorted(radii)


def check_eps_sweep(ctx: AuditContext) -> CheckResult:
    """Robust accuracy under PGD-k over the ladder: monotone within the slack and at most chance +
    CHANCE_MARGIN at the box's diameter (fail), at most chance there (else warn)."""
    start = time.perf_counter()
    radii = eps_ladder(ctx)
    curve = [(0.0, accuracy_of(ctx.clean_correct()))]
    curve += [(r, accuracy_of(ctx.pgd(eps=r))) for r in radii]  # the run at eps itself is shared
    rise = max(b[1] - a[1] for a, b in zip(curve, curve[1:]))
    top_eps, top_acc = curve[-1]
    limit = ctx.chance + CHANCE_MARGIN
    numbers = {"curve": [[e, a] for e, a in curve], "max_rise": max(rise, 0.0), "accuracy_at_max_radius": top_acc,
               "max_radius": top_eps, "chance": ctx.chance, "chance_limit": limit, "slack": ctx.slack}
    problems = []
    if exceeds(rise, ctx.slack):
        problems.append(f"accuracy rises by {100 * rise:.1f} points as eps grows (> {100 * ctx.slack:.0f})")
    if exceeds(top_acc, limit):
        problems.append(f"{100 * top_acc:.1f} % accuracy at eps {top_eps:g} (the whole input box), above "
                        f"chance + {100 * CHANCE_MARGIN:.0f} = {100 * limit:.0f} %")
    if problems:
        verdict, reason = "fail", "; ".join(problems) + ": the attack is failing, not the model resisting"
    elif exceeds(top_acc, ctx.chance):
        verdict, reason = "warn", (f"{100 * top_acc:.1f} % accuracy at eps {top_eps:g} (the whole input box): "
                                   f"above chance ({100 * ctx.chance:.0f} %), within the margin")
    else:
        verdict, reason = "pass", (f"monotone over {len(radii)} radii (slack {100 * ctx.slack:.0f} points); "
                                   f"{100 * top_acc:.1f} % at eps {top_eps:g} (<= chance)")
    return CheckResult("eps_sweep", verdict, reason, numbers, time.perf_counter() - start)
