"""PGD adversarial training with a share of the loss on the clean images, the mixed objective
of Goodfellow, Shlens & Szegedy ("Explaining and Harnessing Adversarial Examples", ICLR 2015,
their alpha) and Kurakin, Goodfellow & Bengio ("Adversarial Machine Learning at Scale", ICLR
2017), with Madry et al.'s PGD examples in place of FGSM's:

    (1 - w) CE(f(x'), y) + w CE(f(x), y)

``w = 0`` is PGD-AT. A small ``w`` trades some robustness for clean accuracy, like TRADES'
beta, but keeps PGD-AT's examples and its loss on them.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from parry.classifier import Classifier
from parry.defenses.training.objective import Stats
from parry.defenses.training.pgd_at import PGDAT
from parry.validation import check_fraction


class MixedPGDAT(PGDAT):
    """PGD-AT whose cross-entropy gives weight ``clean_weight`` to the clean batch.

    Args:
        eps, norm, steps, alpha, random_start: PGD-AT's inner maximisation.
        clean_weight: w, the clean images' share of the loss, in (0, 1).
    """

    name = "mixed-at"

    def __init__(self, eps: float, norm: object = "linf", *, steps: int = 10, alpha: float | None = None,
                 random_start: bool = True, clean_weight: float = 0.1) -> None:
        super().__init__(eps, norm, steps=steps, alpha=alpha, random_start=random_start)
        self.clean_weight = check_fraction(clean_weight, "clean_weight")

    def loss_on(self, model: Classifier, x: Tensor, y: Tensor, x_adv: Tensor) -> tuple[Tensor, Stats]:
        adversarial, stats = super().loss_on(model, x, y, x_adv)
        clean = F.cross_entropy(model(x), y)
        loss = (1.0 - self.clean_weight) * adversarial + self.clean_weight * clean
        stats.update(loss=loss.detach(), adv_loss=adversarial.detach(), clean_loss=clean.detach())
        return loss, stats
