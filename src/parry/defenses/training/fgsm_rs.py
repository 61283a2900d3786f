"""Fast adversarial training with FGSM from a random start (Wong, Rice & Kolter, "Fast is
better than free: Revisiting adversarial training", ICLR 2020): one FGSM step of
``alpha = 1.25 * eps`` from a uniform point of the eps-ball, then cross-entropy on it.

Single-step training can overfit catastrophically (PGD accuracy collapses to ~0 within an
epoch); the Trainer's held-out guard (APGD-CE-20) is on by default for this objective.
"""

from __future__ import annotations

import torch
from torch import Tensor

from parry.attacks.gradient.fgsm import FGSMRandomStart
from parry.classifier import Classifier
from parry.defenses.training.objective import CraftedCrossEntropy, draw_seed


class FGSMRS(CraftedCrossEntropy):
    """FGSM-RS training. ``alpha``: the step; None means ``1.25 * eps`` (Wong et al.)."""

    name = "fgsm-rs"
    needs_overfit_guard = True

    def __init__(self, eps: float, norm: object = "linf", *, alpha: float | None = None) -> None:
        super().__init__(eps, norm, steps=1, alpha=alpha)

    @property
    def step_size(self) -> float:
        return self.alpha if self.alpha is not None else 1.25 * self.eps

    def craft(self, model: Classifier, x: Tensor, y: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The FGSM-RS examples (eval mode, frozen parameters)."""
        attack = FGSMRandomStart(self.eps, self.norm, alpha=self.step_size, early_stop=False,
                                 seed=draw_seed(generator))
        return attack.generate(model, x, y)
