"""Parry: adversarial robustness of deep-learning classifiers, in PyTorch."""

from .classifier import Classifier, as_classifier
from .result import AttackResult
from .threat import ThreatModel

__version__ = "0.1.0"

__all__ = ["AttackResult", "Classifier", "ThreatModel", "__version__", "as_classifier"]
