"""Minimum-norm attacks: the smallest perturbation that changes the decision, per sample."""

from .cw import CarliniWagnerL2
from .ddn import DDN
from .deepfool import DeepFool
from .fab import FAB, FABT
from .fmn import FMN

__all__ = ["CarliniWagnerL2", "DDN", "DeepFool", "FAB", "FABT", "FMN"]
