"""Lipschitz-margin training (Tsuzuku, Sato & Sugiyama, "Lipschitz-margin training: Scalable
certification of perturbation invariance for deep neural networks", NeurIPS 2018) as a
Trainer objective: the cross-entropy of :func:`parry.defenses.lipschitz.lipschitz_margin_loss`,
whose wrong-class logits are raised by ``sqrt(2) * L * radius``. Meant for networks whose
Lipschitz constant is held near ``lipschitz`` by construction (the spectrally normalised
``lipschitz-mnist`` of the zoo), whose certified L2 radius is then margin / (sqrt(2) L)."""

from __future__ import annotations

import torch
from torch import Tensor

from parry.classifier import Classifier
from parry.defenses.lipschitz.loss import lipschitz_margin_loss
from parry.defenses.training.objective import Objective, Stats
from parry.validation import check_nonneg_float, check_positive_float


class LipschitzMargin(Objective):
    """Cross-entropy with the certified margin at L2 ``radius`` built into the logits.

    Args:
        radius: the L2 radius the training margin aims at (pixel space, >= 0).
        lipschitz: the network's Lipschitz constant the offset assumes (1 for the zoo's
            spectrally normalised networks).
        temperature: scales the logits inside the softmax, which a network with L about 1
            needs to reach confident outputs.
    """

    name = "lipschitz-margin"

    def __init__(self, radius: float = 1.0, *, lipschitz: float = 1.0, temperature: float = 10.0) -> None:
        self.radius = float(check_nonneg_float(radius, "radius"))
        self.lipschitz = float(check_positive_float(lipschitz, "lipschitz"))
        self.temperature = float(check_positive_float(temperature, "temperature"))

    def loss(self, model: Classifier, x: Tensor, y: Tensor, *,
             generator: torch.Generator | None = None) -> tuple[Tensor, Stats]:
        logits = model(x).float()
        loss = lipschitz_margin_loss(logits, y, self.radius, lipschitz=self.lipschitz, temperature=self.temperature)
        return loss, {"loss": loss.detach(), "accuracy": (logits.detach().argmax(dim=1) == y).float().mean()}
