"""Helper-based adversarial training, HAT (Rade & Moosavi-Dezfooli, "Reducing Excessive Margin
to Achieve a Better Accuracy vs. Robustness Trade-off", ICLR 2022): TRADES plus a cross-entropy
on helper examples,

    CE(f(x), y) + beta * KL(f(x) || f(x')) + gamma * CE(f(x + h (x' - x)), y_helper).

x' is TRADES' KL maximiser (``steps`` ascent steps from ``x + 0.001 * N(0, 1)``). The helper
example lies ``h`` times as far along the adversarial direction (h = 2 in the paper: x + 2r),
and its label ``y_helper`` is what a standard, non-robust model (the helper) predicts at x'.
The paper finds that adversarial training widens the margin along adversarial directions far
beyond eps, which costs clean accuracy; the helper examples, labelled as a standard model sees
them, tell the network where the boundary may lie. The defaults are the authors' CIFAR-10
settings (beta 2.5, gamma 0.5, h 2). Unlike the reference code, the helper examples are
clipped to the input bounds (a Parry classifier takes inputs within its bounds only).

Under adversarial weight perturbation the Trainer evaluates ``loss_on`` twice on the same
crafted examples; the helper's logits depend on those examples only, so the second call
reuses them (one helper forward pass per step).
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor

from parry.classifier import Classifier
from parry.defenses.training.distillation import (LogitsCache, check_same_classes, check_teacher, check_teacher_id,
                                                  with_teacher_name)
from parry.defenses.training.objective import Stats
from parry.defenses.training.trades import TRADES
from parry.validation import check_nonneg_float, check_positive_float


class HAT(TRADES):
    """HAT: TRADES (``beta``) plus ``gamma`` times the cross-entropy of the helper examples.

    Args:
        teacher: the helper, a standard (non-robust) Classifier over the same inputs and
            classes; it runs in eval mode with frozen parameters. (Named ``teacher`` so that
            recipes load it as they load a distillation teacher.)
        eps, norm, steps, alpha: TRADES' inner maximisation.
        beta: the weight of TRADES' KL term. gamma: the weight of the helper term (>= 0;
            0 is TRADES). h: how far along the adversarial direction the helper examples lie,
            in multiples of it (> 1; the paper's 2).
        teacher_id: how the recipe names the helper; default: its network's class name.
    """

    name = "hat"

    def __init__(self, teacher: Classifier, eps: float, norm: object = "linf", *, steps: int = 10,
                 alpha: float | None = None, beta: float = 2.5, gamma: float = 0.5, h: float = 2.0,
                 teacher_id: str | None = None) -> None:
        super().__init__(eps, norm, steps=steps, alpha=alpha, beta=beta)
        self.teacher = check_teacher(teacher)
        self.gamma = float(check_nonneg_float(gamma, "gamma"))
        self.h = float(check_positive_float(h, "h"))
        if self.h <= 1.0:
            raise ValueError(f"h: helper examples must lie beyond the adversarial example (h > 1), got {h}")
        self.teacher_id = check_teacher_id(teacher_id)
        self._helper_logits = LogitsCache()

    def params(self) -> dict[str, Any]:
        return with_teacher_name(super().params(), self.teacher, self.teacher_id)

    def helper_examples(self, model: Classifier, x: Tensor, x_adv: Tensor) -> Tensor:
        """``x + h (x_adv - x)``, clipped to the model's input bounds."""
        low, high = model.bounds
        return (x + self.h * (x_adv - x)).clamp(low, high)

    def helper_logits(self, model: Classifier, x_adv: Tensor) -> Tensor:
        """The helper's logits at ``x_adv``, computed once per crafted batch (the same tensor,
        not changed in place since)."""
        return self._helper_logits.get([self.teacher], model, x_adv)[0]

    def loss_on(self, model: Classifier, x: Tensor, y: Tensor, x_adv: Tensor) -> tuple[Tensor, Stats]:
        loss, stats = super().loss_on(model, x, y, x_adv)
        helper_logits = self.helper_logits(model, x_adv)
        logits = model(self.helper_examples(model, x, x_adv))
        check_same_classes(helper_logits, logits)
        helper_labels = helper_logits.argmax(dim=1)
        helper = F.cross_entropy(logits, helper_labels)
        loss = loss + self.gamma * helper
        stats.update(loss=loss.detach(), helper_loss=helper.detach(),
                     helper_accuracy=(logits.detach().argmax(dim=1) == helper_labels).float().mean())
        return loss, stats
