"""Adversarially Robust Distillation, ARD (Goldblum, Fowl, Feizi & Goldstein, "Adversarially
Robust Distillation", AAAI 2020): a student learns to reproduce, on adversarial inputs, the
clean outputs of a robust teacher:

    weight * T^2 * KL(t(x)/T || s(x')/T) + (1 - weight) * CE(s(x), y)

where x' is crafted on the student to maximise that KL term (``steps`` ascent steps from
``x + 0.001 * N(0, 1)``, projected onto the eps-ball and the input bounds) and ``KL(p || q)``
is taken between the softmaxes at temperature T. The teacher runs in eval mode with frozen
parameters. At test time the student is used as it is (temperature 1).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from parry.classifier import Classifier
from parry.defenses.training.distillation import (check_same_classes, check_teacher, check_teacher_id, teacher_logits,
                                                  with_teacher_name)
from parry.defenses.training.inner import ascend, small_noise_start
from parry.defenses.training.objective import AdversarialObjective, Stats
from parry.defenses.training.trades import kl_sum
from parry.threat import ThreatModel
from parry.validation import check_positive_float


class ARD(AdversarialObjective):
    """Adversarially Robust Distillation from a (robust) ``teacher``.

    Args:
        teacher: the robust teacher (a Classifier over the same inputs and classes).
        eps, norm, steps, alpha: the student-side inner maximisation (see
            :class:`AdversarialObjective`; ``alpha`` is the ascent step size).
        temperature: the distillation temperature T (finite, > 0).
        weight: the weight of the distillation term, the paper's alpha, in [0, 1]; the rest
            goes to the clean cross-entropy of the student.
        teacher_id: how the recipe names the teacher; default: its network's class name.
    """

    name = "ard"

    def __init__(self, teacher: Classifier, eps: float, norm: object = "linf", *, steps: int = 10,
                 alpha: float | None = None, temperature: float = 1.0, weight: float = 1.0,
                 teacher_id: str | None = None) -> None:
        super().__init__(eps, norm, steps=steps, alpha=alpha)
        self.teacher = check_teacher(teacher)
        self.temperature = float(check_positive_float(temperature, "temperature"))
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0.0 <= float(weight) <= 1.0:
            raise ValueError(f"weight: must lie in [0, 1], got {weight!r}")
        self.weight = float(weight)
        self.teacher_id = check_teacher_id(teacher_id)

    def params(self) -> dict[str, Any]:
        return with_teacher_name(super().params(), self.teacher, self.teacher_id)

    def craft(self, model: Classifier, x: Tensor, teacher_probs: Tensor,
              generator: torch.Generator | None = None) -> Tensor:
        """x' maximising KL(teacher(x)/T || student(x')/T) on the student (eval mode, frozen)."""
        threat = ThreatModel(self.norm, self.eps, model.bounds)
        t = self.temperature
        return ascend(model, x, small_noise_start(x, generator),
                      lambda logits: kl_sum(logits / t, teacher_probs), threat, self.step_size, self.steps)

    def loss(self, model: Classifier, x: Tensor, y: Tensor, *,
             generator: torch.Generator | None = None) -> tuple[Tensor, Stats]:
        t = self.temperature
        teacher_probs = F.softmax(teacher_logits(self.teacher, model, x) / t, dim=1)
        if model.num_classes is not None and model.num_classes != teacher_probs.shape[1]:
            raise ValueError(f"teacher: has {teacher_probs.shape[1]} classes but the student "
                             f"{model.num_classes}; they must have the same classes")
        x_adv = self.craft(model, x, teacher_probs, generator)
        logits_adv = model(x_adv)
        check_same_classes(teacher_probs, logits_adv)
        kl = kl_sum(logits_adv / t, teacher_probs) / x.shape[0]
        loss = self.weight * t * t * kl
        stats: Stats = {"kl": kl.detach(),
                        "adv_accuracy": (logits_adv.detach().argmax(dim=1) == y).float().mean()}
        if self.weight < 1.0:
            logits = model(x)
            natural = F.cross_entropy(logits, y)
            loss = loss + (1.0 - self.weight) * natural
            stats["natural_loss"] = natural.detach()
            stats["accuracy"] = (logits.detach().argmax(dim=1) == y).float().mean()
        stats["loss"] = loss.detach()
        return loss, stats
