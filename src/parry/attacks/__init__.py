"""Evasion attacks. Configure once, call many times: ``PGD(eps=0.3)(model, x, y)``."""

from .base import Attack, RunContext, is_adversarial
from .gradient import APGD, APGDT, BIM, FGSM, FGSMRandomStart, MIFGSM, PGD
from .losses import cross_entropy_loss, dlr_loss, get_loss, margin_loss

__all__ = ["APGD", "APGDT", "Attack", "BIM", "FGSM", "FGSMRandomStart", "MIFGSM", "PGD", "RunContext",
           "cross_entropy_loss", "dlr_loss", "get_loss", "is_adversarial", "margin_loss"]
