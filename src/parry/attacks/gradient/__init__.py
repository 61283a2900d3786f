"""Gradient-based evasion attacks."""

from .fgsm import FGSM, FGSMRandomStart
from .mifgsm import MIFGSM
from .pgd import BIM, PGD

__all__ = ["BIM", "FGSM", "FGSMRandomStart", "MIFGSM", "PGD"]
