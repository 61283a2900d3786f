"""Adaptive wrappers for attacking defences end to end: EOT and BPDA (Athalye et al. 2018).

Both wrap the *model*, so they work with every gradient attack: attack
``eot_classifier(model)`` or ``bpda_classifier(preprocess, model)`` instead of the model.
"""

from .bpda import BPDA, bpda_classifier
from .eot import EOT, eot_classifier

__all__ = ["BPDA", "EOT", "bpda_classifier", "eot_classifier"]
