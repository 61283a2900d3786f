"""``audit``: the gradient-masking audit of a model at one threat model.

Runs the sanity checks of Parry's evaluation rules (DESIGN.md, rule 3), after Athalye,
Carlini & Wagner, "Obfuscated Gradients Give a False Sense of Security", ICML 2018, section
3.1, and Carlini et al., "On Evaluating Adversarial Robustness", 2019, section 5:

1. ``determinism``: the forward pass is deterministic (else attack with EOT);
2. ``gradients``: input gradients are not zero (shattered or vanishing gradients);
3. ``logits``: the model returns logits, not probabilities, and its softmax is not saturated;
4. ``single_step``: PGD is at least as strong as FGSM;
5. ``eps_sweep``: accuracy falls monotonically with eps and reaches chance at a large radius;
6. ``convergence``: more steps and restarts do not lower accuracy much further;
7. ``adaptive_step``: APGD's adaptive step size does not either (Croce & Hein, ICML 2020);
8. ``attack_order``: white-box beats black-box (Square), transfer and random noise.

A check that fails points at the reason a robustness number cannot be trusted; passing them
all is necessary, not sufficient (adaptive attacks remain the evaluator's job: Tramer et al.,
"On Adaptive Attacks to Adversarial Example Defenses", NeurIPS 2020).
"""

from __future__ import annotations

import time
from typing import Callable

import torch
from torch import Tensor, nn

from ...classifier import Classifier, as_classifier
from ...threat import canonical_norm
from ...validation import check_inputs, check_labels, check_logits, check_positive_int
from ...zoo.trainer import BatchSource
from .adaptive_step import check_adaptive_step
from .attack_order import check_attack_order
from .budget import Budget, get_budget
from .context import AuditContext, accuracy_of
from .convergence import check_convergence
from .determinism import check_determinism
from .eps_sweep import check_eps_sweep
from .gradients import check_gradients
from .logits import check_logits as check_logit_outputs
from .single_step import check_single_step
from .surrogate import train_surrogate
from .verdict import AuditReport, CheckResult

Check = Callable[[AuditContext], CheckResult]
#: the checks, in the order they run (cheap ones first).
CHECKS: dict[str, Check] = {
    "determinism": check_determinism,
    "gradients": check_gradients,
    "logits": check_logit_outputs,
    "single_step": check_single_step,
    "eps_sweep": check_eps_sweep,
    "convergence": check_convergence,
    "adaptive_step": check_adaptive_step,
    "attack_order": check_attack_order,
}
AUDIT_NORMS = ("linf", "l2", "l1")


def _check_eps(eps: object) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < float(eps) < float("inf"):
        raise ValueError(f"eps: must be a finite number > 0, got {eps!r}")
    return float(eps)


def _num_classes(clf: Classifier, x: Tensor) -> int:
    with clf.attack_mode(), torch.no_grad():
        logits = check_logits(clf(x[:1]), 1, clf.num_classes)
    return int(logits.shape[1])


def audit(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    norm: str = "linf",
    eps: float,
    seed: int = 0,
    budget: str | Budget = "ci",
    surrogate: nn.Module | None = None,
    train_set: BatchSource | None = None,
    checks: tuple[str, ...] | None = None,
    batch_size: int = 500,
    progress: Callable[[CheckResult], None] | None = None,
) -> AuditReport:
    """Audit ``model`` for gradient masking on the points ``(x, y)`` at ``norm`` radius ``eps``.

    Args:
        model: an ``nn.Module`` returning logits, or a :class:`~parry.Classifier` (its bounds
            and normalisation are used).
        x, y: the audit points (in the model's bounds) and their labels; use a spread sample of
            the test set (rule 6 of DESIGN.md). ~100 points suffice for ``budget='ci'``.
        norm: 'linf', 'l2' or 'l1'. eps: the radius the robustness claim is made at.
        seed: seeds every attack, random draw and the surrogate's training.
        budget: 'ci' (seconds on a CPU for a LeNet) or 'full' (paper-grade budgets), or a
            :class:`Budget`.
        surrogate: the model transfer attacks are crafted on (ideally undefended). When None
            and ``train_set`` is given, a small CNN is trained on ``train_set`` for
            ``budget.surrogate_steps`` steps; when both are None the transfer attack is skipped.
        checks: names of the checks to run (default: all of :data:`CHECKS`, in that order).
        batch_size: points per forward pass or attack call.
        progress: called with each :class:`CheckResult` as soon as it is done.

    Returns:
        An :class:`AuditReport`: the per-check results and the overall verdict ('pass',
        'suspicious' or 'fail') with its reason.
    """
    start = time.perf_counter()
    clf = as_classifier(model)
    norm = canonical_norm(norm)
    if norm not in AUDIT_NORMS:
        raise ValueError(f"norm: the audit supports {AUDIT_NORMS}, got {norm!r}")
    eps = _check_eps(eps)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: must be an int >= 0, got {seed!r}")
    spent = get_budget(budget)
    check_positive_int(batch_size, "batch_size")
    names = tuple(CHECKS) if checks is None else tuple(checks)
    unknown = [c for c in names if c not in CHECKS]
    if unknown or not names:
        raise ValueError(f"checks: unknown or empty selection {list(names)}; valid names: {list(CHECKS)}")
    if progress is not None and not callable(progress):
        raise ValueError(f"progress: must be callable or None, got {type(progress).__name__}")
    if surrogate is not None and not isinstance(surrogate, nn.Module):
        raise ValueError(f"surrogate: expected a torch.nn.Module or None, got {type(surrogate).__name__}")
    check_inputs(x, clf.bounds, clf.input_shape)
    if x.device != clf.device:
        raise ValueError(f"x: is on {x.device} but the model's parameters are on {clf.device}")
    num_classes = _num_classes(clf, x)
    y = check_labels(y, x.shape[0], x.device, "y", num_classes)

    surrogate_clf = None
    if surrogate is not None:
        surrogate_clf = as_classifier(surrogate)
    elif train_set is not None and "attack_order" in names:
        surrogate_clf = train_surrogate(train_set, tuple(x.shape[1:]), num_classes, bounds=clf.bounds,
                                        steps=spent.surrogate_steps, seed=seed, device=x.device)
    ctx = AuditContext(clf, x, y, norm=norm, eps=eps, seed=seed, budget=spent, batch_size=batch_size,
                       surrogate=surrogate_clf, num_classes=num_classes)
    results = []
    for name in names:
        result = CHECKS[name](ctx)
        results.append(result)
        if progress is not None:
            progress(result)
    return AuditReport(results, norm=norm, eps=eps, n=ctx.n, seed=seed, budget=spent.name,
                       clean_accuracy=accuracy_of(ctx.clean_correct()), num_classes=num_classes,
                       time_s=time.perf_counter() - start)
