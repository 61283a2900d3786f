"""The Lipschitz-margin training loss (Tsuzuku, Sato & Sugiyama, "Lipschitz-margin
training: Scalable certification of perturbation invariance for deep neural networks",
NeurIPS 2018).

Cross-entropy on logits whose wrong classes are raised by ``sqrt(2) * L * radius``: a
sample reaches low loss only when its margin exceeds what the certificate needs at
``radius``, so training pushes the certified radius towards ``radius``. ``temperature``
sharpens the softmax, which a network with L about 1 needs to reach confident outputs
(Anil, Lucas & Grosse 2019 use a margin hinge loss for the same reason).
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor

from parry.validation import check_labels, check_nonneg_float, check_positive_float


def lipschitz_margin_loss(logits: Tensor, labels: Tensor, radius: float, *, lipschitz: float = 1.0,
                          temperature: float = 10.0) -> Tensor:
    """Mean cross-entropy of ``temperature * (logits + sqrt(2) * lipschitz * radius * [j != y])``."""
    if not isinstance(logits, Tensor) or logits.ndim != 2 or logits.shape[1] < 2:
        raise ValueError(f"logits: expected an (N, num_classes) tensor with num_classes >= 2, got "
                         f"{tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__}")
    labels = check_labels(labels, logits.shape[0], logits.device, "labels", logits.shape[1])
    radius = check_nonneg_float(radius, "radius")
    lipschitz = check_positive_float(lipschitz, "lipschitz")
    temperature = check_positive_float(temperature, "temperature")
    offset = math.sqrt(2.0) * lipschitz * radius
    wrong = 1.0 - F.one_hot(labels, logits.shape[1]).to(logits.dtype)
    return F.cross_entropy(temperature * (logits + offset * wrong), labels)
