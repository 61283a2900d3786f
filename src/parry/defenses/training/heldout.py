"""The held-out check of every epoch: clean accuracy and accuracy under a (PGD) attack."""

from __future__ import annotations

from typing import Any

import torch

from parry.attacks.base import Attack
from parry.classifier import Classifier


def heldout_accuracy(model: Classifier, dataset: Any, attack: Attack | None, batch_size: int = 500) -> dict[str, Any]:
    """``clean_accuracy`` and (with ``attack``) ``robust_accuracy`` on all of ``dataset``.

    The attack runs in evaluation mode (its own early exit); ``points`` is the number of samples.
    """
    device = model.device
    clean = torch.zeros((), dtype=torch.long, device=device)
    robust = torch.zeros((), dtype=torch.long, device=device)
    total = 0
    for x, y in dataset.batches(batch_size, device=device):
        if attack is None:
            with model.attack_mode(), torch.no_grad():
                clean += (model(x).argmax(dim=1) == y).sum()
        else:
            result = attack(model, x, y)
            clean += result.clean_correct.sum()
            robust += result.robust.sum()
        total += y.shape[0]
    out: dict[str, Any] = {"points": total, "clean_accuracy": clean.item() / total}
    if attack is not None:
        out["robust_accuracy"] = robust.item() / total
    return out
