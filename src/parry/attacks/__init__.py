"""Evasion attacks. Configure once, call many times: ``PGD(eps=0.3)(model, x, y)``."""

from .base import Attack, RunContext, is_adversarial
from .blackbox import Square, transfer_attack, transfer_matrix
from .gradient import APGD, APGDT, BIM, FGSM, FGSMRandomStart, MIFGSM, PGD
from .losses import cross_entropy_loss, dlr_loss, get_loss, margin_loss
from .minnorm import DDN, FAB, FABT, FMN, CarliniWagnerL2, DeepFool

__all__ = ["APGD", "APGDT", "Attack", "BIM", "CarliniWagnerL2", "DDN", "DeepFool", "FAB", "FABT", "FGSM",
           "FGSMRandomStart", "FMN", "MIFGSM", "PGD", "RunContext", "Square", "cross_entropy_loss", "dlr_loss",
           "get_loss", "is_adversarial", "margin_loss", "transfer_attack", "transfer_matrix"]
