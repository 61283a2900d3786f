"""The fixed-budget inner maximisation shared by TRADES and MART.

Both reference codes (Zhang et al., ICML 2019; Wang et al., ICLR 2020) start from
``x + 0.001 * N(0, 1)`` and take ``steps`` steepest-ascent steps of size ``alpha`` on a
loss of the logits, projecting onto the eps-ball and the input bounds after every step.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from parry.attacks.gradient.steps import direction
from parry.classifier import Classifier
from parry.defenses.training.objective import draw_seed
from parry.threat import ThreatModel


def small_noise_start(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """``x + 0.001 * N(0, 1)``, the start of the TRADES and MART codes (not clipped, as there).

    A (CPU) ``generator`` on another device than ``x`` seeds a generator on x's device.
    """
    if generator is not None and generator.device != x.device:
        generator = torch.Generator(device=x.device).manual_seed(draw_seed(generator))
    return x + 0.001 * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def ascend(model: Classifier, x: Tensor, start: Tensor, objective: Callable[[Tensor], Tensor],
           threat: ThreatModel, alpha: float, steps: int) -> Tensor:
    """Maximise ``objective(logits)`` (summed over the batch) from ``start`` around ``x``.

    Runs with the model in eval mode and frozen parameters; returns a detached point inside
    ``threat`` around ``x``.
    """
    current = start.detach()
    with model.attack_mode():
        for _ in range(steps):
            current.requires_grad_(True)
            grad, = torch.autograd.grad(objective(model(current)), current)
            step = direction(threat.norm, grad, current.detach(), threat.bounds)
            current = threat.project(current.detach() + alpha * step, x)
        if steps == 0:
            current = threat.project(current, x)
    return current.detach()
