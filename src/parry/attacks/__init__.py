"""Evasion attacks. Configure once, call many times: ``PGD(eps=0.3)(model, x, y)``."""

from .base import Attack, RunContext, is_adversarial
from .gradient import BIM, FGSM, FGSMRandomStart, MIFGSM, PGD
from .losses import cross_entropy_loss, get_loss, margin_loss

__all__ = ["Attack", "BIM", "FGSM", "FGSMRandomStart", "MIFGSM", "PGD", "RunContext",
           "cross_entropy_loss", "get_loss", "is_adversarial", "margin_loss"]
