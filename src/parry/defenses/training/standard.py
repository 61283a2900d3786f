"""Standard training: cross-entropy on the clean inputs (no defence; the baseline)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from parry.classifier import Classifier
from parry.defenses.training.objective import Objective, Stats


class Standard(Objective):
    """Empirical risk minimisation with the cross-entropy loss."""

    name = "standard"

    def loss(self, model: Classifier, x: Tensor, y: Tensor, *,
             generator: torch.Generator | None = None) -> tuple[Tensor, Stats]:
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        accuracy = (logits.detach().argmax(dim=1) == y).float().mean()
        return loss, {"loss": loss.detach(), "accuracy": accuracy}
