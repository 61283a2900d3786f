"""Single-step attacks.

- FGSM: Goodfellow et al., "Explaining and Harnessing Adversarial Examples", ICLR 2015:
  ``x + eps * sign(grad)`` (the L2 version steps along the normalised gradient).
- FGSM with random start (FGSM-RS): Wong et al., "Fast is better than free:
  Revisiting adversarial training", ICLR 2020: a uniform start in the eps-ball, then
  one step of ``alpha = 1.25 * eps``, projected back.
"""

from __future__ import annotations

from ...threat import Eps
from .pgd import PGD


class FGSM(PGD):
    """Fast gradient sign method: one step of size eps from x."""

    name = "fgsm"
    _alpha_scale_steps = 1.0

    def __init__(self, eps: Eps, norm: object = "linf", *, loss: str = "ce", early_stop: bool = True,
                 seed: int | None = None) -> None:
        super().__init__(eps, norm, steps=1, random_start=False, loss=loss, early_stop=early_stop, seed=seed)


class FGSMRandomStart(PGD):
    """FGSM from a uniform random start, step ``alpha = 1.25 * eps`` (Wong et al. 2020)."""

    name = "fgsm-rs"
    _alpha_scale_steps = 1.25

    def __init__(self, eps: Eps, norm: object = "linf", *, alpha: float | None = None, loss: str = "ce",
                 early_stop: bool = True, seed: int | None = None) -> None:
        super().__init__(eps, norm, steps=1, alpha=alpha, random_start=True, loss=loss,
                         early_stop=early_stop, seed=seed)
