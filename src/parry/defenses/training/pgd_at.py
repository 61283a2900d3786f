"""PGD adversarial training (Madry et al., "Towards Deep Learning Models Resistant to
Adversarial Attacks", ICLR 2018): cross-entropy on PGD examples crafted for the current
model, from a uniform random start, every sample attacked for the full budget."""

from __future__ import annotations

import torch
from torch import Tensor

from parry.attacks.gradient.pgd import PGD
from parry.classifier import Classifier
from parry.defenses.training.objective import CraftedCrossEntropy, draw_seed


class PGDAT(CraftedCrossEntropy):
    """min_theta E[max_{||d|| <= eps} CE(f(x + d), y)], the inner max by PGD-``steps``.

    Args: see :class:`AdversarialObjective`; ``random_start`` as in PGD (Madry et al. use it).
    """

    name = "pgd-at"

    def __init__(self, eps: float, norm: object = "linf", *, steps: int = 10, alpha: float | None = None,
                 random_start: bool = True) -> None:
        super().__init__(eps, norm, steps=steps, alpha=alpha)
        if not isinstance(random_start, bool):
            raise ValueError(f"random_start: expected a bool, got {random_start!r}")
        self.random_start = random_start

    def craft(self, model: Classifier, x: Tensor, y: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The PGD examples (eval mode, frozen parameters, no early exit)."""
        attack = PGD(self.eps, self.norm, steps=self.steps, alpha=self.step_size, random_start=self.random_start,
                     early_stop=False, seed=draw_seed(generator))
        return attack.generate(model, x, y)
