"""Gradient-based evasion attacks."""

from .apgd import APGD, APGDT
from .fgsm import FGSM, FGSMRandomStart
from .mifgsm import MIFGSM
from .pgd import BIM, PGD

__all__ = ["APGD", "APGDT", "BIM", "FGSM", "FGSMRandomStart", "MIFGSM", "PGD"]
