"""TRADES (Zhang et al., "Theoretically Principled Trade-off between Robustness and
Accuracy", ICML 2019): ``CE(f(x), y) + beta * KL(f(x) || f(x'))``, where x' maximises the
KL term by ``steps`` ascent steps from ``x + 0.001 * N(0, 1)`` (as in the paper's code).

The paper's settings: MNIST eps 0.3, 40 steps of 0.01, beta 1; CIFAR-10 eps 8/255,
10 steps of 0.007, beta 6. ``alpha=None`` uses ``2.5 * eps / steps``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from parry.classifier import Classifier
from parry.defenses.training.inner import ascend, small_noise_start
from parry.defenses.training.objective import CraftedObjective, Stats, check_beta
from parry.threat import ThreatModel


def kl_sum(logits_adv: Tensor, probs_clean: Tensor) -> Tensor:
    """sum over the batch of KL(p_clean || p_adv) (TRADES' ``KLDivLoss(size_average=False)``)."""
    return F.kl_div(F.log_softmax(logits_adv, dim=1), probs_clean, reduction="sum")


class TRADES(CraftedObjective):
    """TRADES with trade-off ``beta`` (default 6, the paper's CIFAR-10 value)."""

    name = "trades"

    def __init__(self, eps: float, norm: object = "linf", *, steps: int = 10, alpha: float | None = None,
                 beta: float = 6.0) -> None:
        super().__init__(eps, norm, steps=steps, alpha=alpha)
        self.beta = check_beta(beta)

    def craft(self, model: Classifier, x: Tensor, y: Tensor | None = None,
              generator: torch.Generator | None = None) -> Tensor:
        """x' maximising KL(f(x) || f(x')) (eval mode, frozen parameters; the labels are not used)."""
        with model.attack_mode(), torch.no_grad():
            probs = F.softmax(model(x), dim=1)
        threat = ThreatModel(self.norm, self.eps, model.bounds)
        return ascend(model, x, small_noise_start(x, generator), lambda logits: kl_sum(logits, probs),
                      threat, self.step_size, self.steps)

    def kl(self, model: Classifier, x: Tensor, x_adv: Tensor) -> Tensor:
        """The batch mean of KL(f(x) || f(x_adv)) in the model's current mode (the regulariser)."""
        with torch.no_grad():
            probs = F.softmax(model(x), dim=1)
            return kl_sum(model(x_adv), probs) / x.shape[0]

    def loss_on(self, model: Classifier, x: Tensor, y: Tensor, x_adv: Tensor) -> tuple[Tensor, Stats]:
        logits = model(x)
        logits_adv = model(x_adv)
        natural = F.cross_entropy(logits, y)
        robust = kl_sum(logits_adv, F.softmax(logits, dim=1)) / x.shape[0]
        loss = natural + self.beta * robust
        stats = {"loss": loss.detach(), "natural_loss": natural.detach(), "kl": robust.detach(),
                 "accuracy": (logits.detach().argmax(dim=1) == y).float().mean(),
                 "adv_accuracy": (logits_adv.detach().argmax(dim=1) == y).float().mean()}
        return loss, stats
