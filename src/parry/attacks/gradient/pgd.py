"""Projected gradient descent (PGD) in Linf, L2 and L1.

Madry et al., "Towards Deep Learning Models Resistant to Adversarial Attacks",
ICLR 2018: iterate steepest-ascent steps of size ``alpha`` on the loss, projecting
onto the eps-ball and the input bounds, from a uniformly random start. The default
step size is their rule ``alpha = 2.5 * eps / steps``. The L1 version takes the
sparse steps of :mod:`parry.attacks.gradient.steps`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ...classifier import Classifier
from ...threat import Eps, ThreatModel
from ...validation import check_nonneg_float, check_positive_int
from ..base import Attack, RunContext, is_adversarial
from ..losses import get_loss
from .steps import direction


class PGD(Attack):
    """PGD with random restarts, CE or margin loss, untargeted or targeted.

    Args:
        eps: radius of the threat model. norm: 'linf', 'l2' or 'l1'.
        steps: iterations per restart. alpha: absolute step size; None means
            ``2.5 * eps / steps`` (per sample when eps is per sample).
        random_start: start from a uniform point of the eps-ball instead of x.
        restarts: independent runs; per sample the first success (evaluation) or the
            highest final loss is kept.
        loss: 'ce' (cross-entropy) or 'margin' (C&W).
        momentum: decay of an accumulated L1-normalised gradient (MI-FGSM); 0 disables.
        l1_sparsity: quantile of |gradient| below which L1 steps leave coordinates alone.
    """

    name = "pgd"
    _alpha_scale_steps = 2.5  # default alpha = _alpha_scale_steps * eps / steps

    def __init__(self, eps: Eps, norm: object = "linf", *, steps: int = 40, alpha: float | None = None,
                 random_start: bool = True, restarts: int = 1, loss: str = "ce", momentum: float = 0.0,
                 l1_sparsity: float = 0.99, early_stop: bool = True, seed: int | None = None) -> None:
        super().__init__(eps, norm, early_stop=early_stop, seed=seed)
        self.steps = check_positive_int(steps, "steps")
        self.alpha = check_nonneg_float(alpha, "alpha", allow_none=True)
        self.random_start = bool(random_start)
        self.restarts = check_positive_int(restarts, "restarts")
        get_loss(loss)
        self.loss = loss
        self.momentum = check_nonneg_float(momentum, "momentum")
        if not 0.0 <= l1_sparsity < 1.0:
            raise ValueError(f"l1_sparsity: must lie in [0, 1), got {l1_sparsity}")
        self.l1_sparsity = float(l1_sparsity)

    def _step_size(self, eps: Tensor) -> Tensor:
        if self.alpha is not None:
            return torch.full_like(eps, self.alpha)
        return eps * (self._alpha_scale_steps / self.steps)

    def run(self, classifier: Classifier, x: Tensor, y: Tensor, ctx: RunContext) -> Tensor:
        if self.restarts == 1:
            return self._single_run(classifier, x, y, ctx.target, ctx.threat, ctx)
        loss_fn = get_loss(self.loss)
        best = x.clone()
        best_score = torch.full((x.shape[0],), float("-inf"), device=x.device)
        for _ in range(self.restarts):
            todo = torch.arange(x.shape[0], device=x.device)
            if ctx.early_stop:
                todo = (best_score < float("inf")).nonzero().squeeze(1)
                if todo.numel() == 0:
                    break
            target = None if ctx.target is None else ctx.target[todo]
            adv = self._single_run(classifier, x[todo], y[todo], target, ctx.threat.subset(todo), ctx)
            with torch.no_grad():
                logits = classifier(adv)
            score = loss_fn(logits, y[todo], target).masked_fill(is_adversarial(logits, y[todo], target),
                                                                 float("inf"))
            better = score > best_score[todo]
            best[todo[better]] = adv[better]
            best_score[todo[better]] = score[better]
        return best

    def _single_run(self, classifier: Classifier, x: Tensor, y: Tensor, target: Tensor | None,
                    threat: ThreatModel, ctx: RunContext) -> Tensor:
        loss_fn = get_loss(self.loss)
        x_adv = threat.random_init(x, ctx.generator) if self.random_start else x.clone()
        alpha = self._step_size(threat.eps_tensor(x)).view(-1, *([1] * (x.ndim - 1)))
        active = torch.arange(x.shape[0], device=x.device)
        current, origin, labels, targets = x_adv, x, y, target
        accumulated = torch.zeros_like(x) if self.momentum > 0 else None
        steps_run = 0
        for _ in range(self.steps):
            current = current.detach().requires_grad_(True)
            logits = classifier(current)
            grad, = torch.autograd.grad(loss_fn(logits, labels, targets).sum(), current)
            current = current.detach()
            if ctx.early_stop:
                keep = ~is_adversarial(logits.detach(), labels, targets)
                if not keep.all():
                    x_adv[active[~keep]] = current[~keep]
                    active, current, origin, labels, grad, alpha = (
                        t[keep] for t in (active, current, origin, labels, grad, alpha))
                    targets = None if targets is None else targets[keep]
                    accumulated = None if accumulated is None else accumulated[keep]
                    threat = threat.subset(keep.nonzero().squeeze(1))
                    if active.numel() == 0:
                        break
            steps_run += 1
            if accumulated is not None:
                l1 = grad.abs().flatten(1).mean(dim=1).clamp_min(1e-12)
                accumulated = self.momentum * accumulated + grad / l1.view(-1, *([1] * (x.ndim - 1)))
                grad = accumulated
            step = direction(threat.norm, grad, current, threat.bounds, self.l1_sparsity)
            current = threat.project(current + alpha * step, origin)
        x_adv[active] = current
        ctx.steps = max(ctx.steps, steps_run)
        return x_adv


class BIM(PGD):
    """Basic iterative method (Kurakin et al., "Adversarial examples in the physical world",
    ICLR workshop 2017): PGD from x itself, step ``eps / steps`` by default."""

    name = "bim"
    _alpha_scale_steps = 1.0

    def __init__(self, eps: Eps, norm: object = "linf", *, steps: int = 10, alpha: float | None = None,
                 loss: str = "ce", early_stop: bool = True, seed: int | None = None) -> None:
        super().__init__(eps, norm, steps=steps, alpha=alpha, random_start=False, loss=loss,
                         early_stop=early_stop, seed=seed)
