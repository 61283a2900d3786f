"""Decoupled Direction and Norm (DDN), L2.

Rony et al., "Decoupling Direction and Norm for Efficient Gradient-Based L2 Adversarial
Attacks and Defenses", CVPR 2019. Each step takes a normalised gradient step on the
cross-entropy (away from y, or towards the target) with a cosine-annealed step size
(from 1 to 0.01, as in the authors' reference implementation), then rescales the
perturbation to the norm ``eps_k``, which shrinks by ``1 - gamma`` while the current
point is adversarial and grows by ``1 + gamma`` otherwise (capped at the largest
perturbation the box allows), and clips to the box. ``levels`` quantises every iterate
to that many values per coordinate (the paper's 8-bit images: 256); off by default.
The smallest adversarial perturbation seen is returned.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ...classifier import Classifier
from ...threat import Eps, flat_norm
from ...validation import check_fraction, check_positive_float, check_positive_int
from ..base import Attack, RunContext
from ..losses import margin_loss
from .common import BestTracker, margin_adversarial, per_sample


class DDN(Attack):
    """DDN: minimum-L2 attack alternating a gradient step and a norm update.

    Args:
        eps: None (default) for minimum norm inside the box; a radius projects the result
            onto the L2 ball and counts success within it. norm: 'l2' only.
        steps: iterations. init_epsilon: first norm of the perturbation.
        gamma: relative change of the norm per step, in (0, 1).
        levels: quantise iterates to this many values per coordinate (None: off).
        early_stop: skip points already adversarial at the start (norm 0); the others keep
            shrinking their perturbation after a first success (minimum norm).
    """

    name = "ddn"
    norms = ("l2",)
    requires_eps = False

    def __init__(self, eps: Eps | None = None, norm: object = "l2", *, steps: int = 100,
                 init_epsilon: float = 1.0, gamma: float = 0.05, levels: int | None = None,
                 early_stop: bool = True, seed: int | None = None) -> None:
        super().__init__(eps, norm, early_stop=early_stop, seed=seed)
        self.steps = check_positive_int(steps, "steps")
        self.init_epsilon = check_positive_float(init_epsilon, "init_epsilon")
        self.gamma = check_fraction(gamma, "gamma")
        self.levels = None if levels is None else check_positive_int(levels, "levels", minimum=2)

    def run(self, classifier: Classifier, x: Tensor, y: Tensor, ctx: RunContext) -> Tensor:
        low, high = ctx.threat.bounds
        target = ctx.target
        labels, sign = (y, 1.0) if target is None else (target, -1.0)
        n = x.shape[0]
        delta = torch.zeros_like(x)
        epsilon = torch.full((n,), self.init_epsilon, device=x.device, dtype=x.dtype)
        worst_norm = flat_norm(torch.maximum(x - low, high - x), "l2")
        best = BestTracker(x, "l2")
        for i in range(self.steps):
            alpha = 0.01 + (1.0 - 0.01) * (1 + math.cos(math.pi * i / self.steps)) / 2
            delta.requires_grad_(True)
            x_adv = x + delta
            logits = classifier(x_adv)
            loss = sign * F.cross_entropy(logits.float(), labels, reduction="sum")
            grad, = torch.autograd.grad(loss, delta)
            with torch.no_grad():
                delta = delta.detach()
                is_adv = margin_adversarial(margin_loss(logits.detach(), y, target))
                best.update(x_adv.detach(), is_adv)
                grad_norms = flat_norm(grad, "l2")
                # A vanishing gradient: step in a random direction (no host sync to find out).
                zero = per_sample(grad_norms < 1e-12, grad)
                noise = torch.randn(grad.shape, device=grad.device, dtype=grad.dtype, generator=ctx.generator)
                grad = torch.where(zero, noise, grad)
                grad_norms = flat_norm(grad, "l2")
                delta += grad * per_sample(alpha / grad_norms.clamp_min(1e-12), grad)
                epsilon = torch.where(is_adv, epsilon * (1 - self.gamma), epsilon * (1 + self.gamma))
                epsilon = torch.minimum(epsilon, worst_norm)
                delta *= per_sample(epsilon / flat_norm(delta, "l2").clamp_min(1e-12), delta)
                x_new = (x + delta).clamp(low, high)
                if self.levels is not None:
                    scale = (self.levels - 1) / (high - low)
                    x_new = ((x_new - low) * scale).round() / scale + low
                delta = x_new - x
        ctx.steps = max(ctx.steps, self.steps)
        return best.result()
