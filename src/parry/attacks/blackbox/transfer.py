"""Transfer attacks: craft adversarial examples on surrogates, evaluate them on targets.

Papernot et al., "Transferability in Machine Learning", 2016; Tramer et al., "Ensemble
Adversarial Training", ICLR 2018; Liu et al., "Delving into Transferable Adversarial
Examples", ICLR 2017 (ensembles of surrogates transfer better).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...classifier import Classifier, as_classifier
from ...metrics import predict
from ..base import Attack


class SurrogateEnsemble(nn.Module):
    """The mean of the surrogates' log-probabilities: one differentiable model to attack."""

    def __init__(self, models: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(models) == 0:
            raise ValueError("models: need at least one surrogate")
        self.members = nn.ModuleList(as_classifier(m) for m in models)

    def forward(self, x: Tensor) -> Tensor:
        return torch.stack([F.log_softmax(m(x).float(), dim=1) for m in self.members]).mean(dim=0)


def _as_surrogate(surrogates: nn.Module | Sequence[nn.Module]) -> Classifier:
    if isinstance(surrogates, nn.Module):
        return as_classifier(surrogates)
    members = list(surrogates)
    first = as_classifier(members[0]) if members else None
    ensemble = SurrogateEnsemble(members)
    return Classifier(ensemble, bounds=first.bounds, input_shape=first.input_shape)


def transfer_attack(attack: Attack, surrogates: nn.Module | Sequence[nn.Module], target_model: nn.Module,
                    x: Tensor, y: Tensor) -> dict[str, Tensor | float]:
    """Craft on the surrogate(s) with a fixed budget, evaluate on ``target_model``.

    Returns the adversarial inputs, the target's clean and adversarial predictions, and the
    transfer success rate over the points the target classifies correctly before the attack.
    """
    adv = attack.generate(_as_surrogate(surrogates), x, y)
    clean_pred, adv_pred = predict(target_model, x), predict(target_model, adv)
    correct = clean_pred == y.to(clean_pred.device)
    rate = float((adv_pred[correct] != y[correct]).float().mean()) if bool(correct.any()) else float("nan")
    return {"adv": adv, "clean_pred": clean_pred, "adv_pred": adv_pred, "success_rate": rate,
            "robust_accuracy": float((adv_pred == y).float().mean())}


def transfer_matrix(models: Mapping[str, nn.Module], attack: Attack, x: Tensor,
                    y: Tensor) -> tuple[list[str], Tensor]:
    """Success rates M[i, j] of examples crafted on model i and evaluated on model j.

    Each rate is over the points model j classifies correctly before the attack; the diagonal
    is the white-box (fixed-budget) success rate.
    """
    if len(models) == 0:
        raise ValueError("models: need at least one model")
    names = list(models)
    matrix = torch.empty(len(names), len(names))
    clean = {name: predict(models[name], x) == y for name in names}
    for i, source in enumerate(names):
        adv = attack.generate(models[source], x, y)
        for j, target in enumerate(names):
            correct = clean[target]
            fooled = predict(models[target], adv) != y
            matrix[i, j] = fooled[correct].float().mean() if bool(correct.any()) else float("nan")
    return names, matrix
