"""Momentum iterative FGSM.

Dong et al., "Boosting Adversarial Attacks with Momentum", CVPR 2018: accumulate
``g <- mu * g + grad / ||grad||_1`` and step ``alpha * sign(g)`` (Linf) or along
``g / ||g||_2`` (L2), with ``alpha = eps / steps``, from x itself.
"""

from __future__ import annotations

from ...threat import Eps
from .pgd import PGD


class MIFGSM(PGD):
    """MI-FGSM with decay factor ``decay`` (mu in the paper, default 1.0)."""

    name = "mi-fgsm"
    norms = ("linf", "l2")
    _alpha_scale_steps = 1.0

    def __init__(self, eps: Eps, norm: object = "linf", *, steps: int = 10, decay: float = 1.0,
                 alpha: float | None = None, loss: str = "ce", early_stop: bool = True,
                 seed: int | None = None) -> None:
        super().__init__(eps, norm, steps=steps, alpha=alpha, random_start=False, loss=loss,
                         momentum=decay, early_stop=early_stop, seed=seed)
