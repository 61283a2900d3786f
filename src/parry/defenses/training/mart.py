"""MART (Wang et al., "Improving Adversarial Robustness Requires Revisiting Misclassified
Examples", ICLR 2020): a boosted cross-entropy on the adversarial example plus
``beta * KL(f(x) || f(x'))`` weighted per sample by ``1 - p_y(x)``, so misclassified clean
points weigh more. x' comes from ``steps`` CE-ascent steps from ``x + 0.001 * N(0, 1)``,
as in the paper's code (CIFAR-10: eps 8/255, 10 steps of 2/255, beta 6).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from parry.classifier import Classifier
from parry.defenses.training.inner import ascend, small_noise_start
from parry.defenses.training.objective import CraftedObjective, Stats, check_beta
from parry.threat import ThreatModel


class MART(CraftedObjective):
    """MART with regularisation weight ``beta`` (default 6, the paper's value)."""

    name = "mart"

    def __init__(self, eps: float, norm: object = "linf", *, steps: int = 10, alpha: float | None = None,
                 beta: float = 6.0) -> None:
        super().__init__(eps, norm, steps=steps, alpha=alpha)
        self.beta = check_beta(beta)

    def craft(self, model: Classifier, x: Tensor, y: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """x' maximising CE(f(x'), y) (eval mode, frozen parameters)."""
        threat = ThreatModel(self.norm, self.eps, model.bounds)
        return ascend(model, x, small_noise_start(x, generator),
                      lambda logits: F.cross_entropy(logits, y, reduction="sum"), threat, self.step_size, self.steps)

    def loss_on(self, model: Classifier, x: Tensor, y: Tensor, x_adv: Tensor) -> tuple[Tensor, Stats]:
        logits = model(x)
        logits_adv = model(x_adv)
        adv_probs = F.softmax(logits_adv, dim=1)
        top2 = adv_probs.argsort(dim=1)[:, -2:]
        runner_up = torch.where(top2[:, -1] == y, top2[:, -2], top2[:, -1])
        boosted_ce = F.cross_entropy(logits_adv, y) + F.nll_loss(torch.log(1.0001 - adv_probs + 1e-12), runner_up)
        nat_probs = F.softmax(logits, dim=1)
        true_probs = nat_probs.gather(1, y.unsqueeze(1)).squeeze(1)
        kl = F.kl_div(torch.log(adv_probs + 1e-12), nat_probs, reduction="none").sum(dim=1)
        robust = (kl * (1.0000001 - true_probs)).mean()
        loss = boosted_ce + self.beta * robust
        stats = {"loss": loss.detach(), "bce": boosted_ce.detach(), "weighted_kl": robust.detach(),
                 "accuracy": (logits.detach().argmax(dim=1) == y).float().mean(),
                 "adv_accuracy": (logits_adv.detach().argmax(dim=1) == y).float().mean()}
        return loss, stats
