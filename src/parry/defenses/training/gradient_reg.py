"""Input-gradient regularisation by double backpropagation (Drucker & LeCun, "Improving
Generalization Performance Using Double Backpropagation", IEEE TNN 1992; Ross & Doshi-Velez,
"Improving the Adversarial Robustness and Interpretability of Deep Neural Networks by
Regularizing their Input Gradients", AAAI 2018):

    CE(f(x), y) + lam * E_i ||d CE(f(x_i), y_i) / d x_i||_2^2

The input gradient is taken with ``create_graph=True``, so the penalty is itself
differentiable in the parameters (the second backward pass). No adversarial examples are
crafted: the defence flattens the loss around the data. It is known to resist single-step
attacks far better than iterative ones; evaluate it with a strong attack (and pass an
``eval_attack`` to the Trainer: this objective has no eps of its own).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from parry.classifier import Classifier
from parry.defenses.training.objective import Objective, Stats
from parry.validation import check_nonneg_float


def input_gradient_penalty(model: Classifier, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """``(logits, penalty)``: the logits at ``x`` and the batch mean of the squared L2 norm of
    each sample's cross-entropy input gradient, differentiable in the parameters (the model
    runs in its current mode)."""
    x = x.detach().requires_grad_(True)
    logits = model(x)
    # the gradient of the summed loss w.r.t. x_i is the gradient of sample i's own loss
    grad, = torch.autograd.grad(F.cross_entropy(logits, y, reduction="sum"), x, create_graph=True)
    return logits, grad.pow(2).flatten(1).sum(dim=1).mean()


class GradientRegularization(Objective):
    """Cross-entropy plus ``lam`` times the squared input-gradient norm (double backpropagation).

    Args:
        lam: weight of the penalty (finite, >= 0; 0 is standard training). The best value
            depends on the data scale and the model: tune it on held-out robust accuracy.
    """

    name = "gradient-reg"

    def __init__(self, lam: float = 1.0) -> None:
        self.lam = float(check_nonneg_float(lam, "lam"))

    def loss(self, model: Classifier, x: Tensor, y: Tensor, *,
             generator: torch.Generator | None = None) -> tuple[Tensor, Stats]:
        logits, penalty = input_gradient_penalty(model, x, y)
        ce = F.cross_entropy(logits, y)
        loss = ce + self.lam * penalty
        stats = {"loss": loss.detach(), "ce": ce.detach(), "grad_norm_sq": penalty.detach(),
                 "accuracy": (logits.detach().argmax(dim=1) == y).float().mean()}
        return loss, stats
