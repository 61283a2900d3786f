"""PGD adversarial training with knowledge distillation from a robust and a standard teacher
(Chen, Zhang, Liu, Chang & Wang, "Robust Overfitting may be Mitigated by Properly Learned
Smoothening", ICLR 2021). The examples are PGD-AT's (x' maximises the student's cross-entropy);
the loss mixes that cross-entropy with the teachers' softened predictions at x':

    (1 - sum_i w_i) CE(s(x'), y) + sum_i w_i T^2 KL(t_i(x')/T || s(x')/T)

``KL(p || q)`` is taken between the softmaxes at temperature T (the batch mean). The paper's
teachers are the same network adversarially trained (the checkpoint with the best robust
validation accuracy, weight 0.6) and a standardly trained one (weight 0.1), at T = 2; the
smoothed targets, with averaged weights, flatten the robust-overfitting curve. The teachers
run in eval mode with frozen parameters; under adversarial weight perturbation their logits
are computed once per crafted batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch.nn.functional as F
from torch import Tensor

from parry.classifier import Classifier
from parry.defenses.training.distillation import LogitsCache, check_same_classes, check_teacher, teacher_name
from parry.defenses.training.objective import Stats
from parry.defenses.training.pgd_at import PGDAT
from parry.defenses.training.trades import kl_sum
from parry.validation import check_nonneg_float, check_positive_float


class KnowledgeDistillationAT(PGDAT):
    """PGD-AT whose cross-entropy is partly replaced by distillation from frozen ``teacher``s.

    Args:
        teacher: one Classifier or a sequence of them (over the same inputs and classes), e.g.
            ``(robust, standard)`` as in the paper.
        eps, norm, steps, alpha, random_start: PGD-AT's inner maximisation.
        temperature: the distillation temperature T (finite, > 0).
        weights: one weight w_i >= 0 per teacher, summing to at most 1; the rest weighs the
            cross-entropy on the labels. Default: the paper's (0.6, 0.1).
        teacher_id: how the recipe names the teachers, one string per teacher (default: their
            networks' class names).
    """

    name = "kd-at"

    def __init__(self, teacher: Classifier | Sequence[Classifier], eps: float, norm: object = "linf", *,
                 steps: int = 10, alpha: float | None = None, random_start: bool = True,
                 temperature: float = 2.0, weights: Sequence[float] = (0.6, 0.1),
                 teacher_id: str | Sequence[str] | None = None) -> None:
        super().__init__(eps, norm, steps=steps, alpha=alpha, random_start=random_start)
        teachers = list(teacher) if isinstance(teacher, Sequence) else [teacher]
        if not teachers:
            raise ValueError("teacher: need at least one teacher")
        self._teachers = [check_teacher(t) for t in teachers]
        if isinstance(weights, str) or not isinstance(weights, Sequence) or len(weights) != len(teachers):
            raise ValueError(f"weights: expected one weight per teacher ({len(teachers)}), got {weights!r}")
        self.weights = [float(check_nonneg_float(w, "weights")) for w in weights]
        if sum(self.weights) > 1.0 + 1e-9:
            raise ValueError(f"weights: must sum to at most 1 (the rest weighs the cross-entropy), got {weights!r}")
        self.temperature = float(check_positive_float(temperature, "temperature"))
        ids = [teacher_id] * len(teachers) if teacher_id is None else [teacher_id] if isinstance(teacher_id, str) \
            else list(teacher_id)
        if len(ids) != len(teachers) or not all(i is None or isinstance(i, str) for i in ids):
            raise ValueError(f"teacher_id: expected one string per teacher ({len(teachers)}), got {teacher_id!r}")
        self._teacher_ids = ids
        self._teacher_logits = LogitsCache()

    def params(self) -> dict[str, Any]:
        return {**super().params(), "teacher": [teacher_name(t, i) for t, i in zip(self._teachers, self._teacher_ids)]}

    def loss_on(self, model: Classifier, x: Tensor, y: Tensor, x_adv: Tensor) -> tuple[Tensor, Stats]:
        t = self.temperature
        logits = model(x_adv)
        natural = F.cross_entropy(logits, y)
        loss = (1.0 - sum(self.weights)) * natural
        stats: Stats = {"ce_loss": natural.detach()}
        for i, (weight, target) in enumerate(zip(self.weights, self._teacher_logits.get(self._teachers, model, x_adv))):
            check_same_classes(target, logits)
            kl = kl_sum(logits.float() / t, F.softmax(target / t, dim=1)) / x.shape[0]
            loss = loss + weight * t * t * kl
            stats[f"kl_{i}"] = kl.detach()
        stats.update(loss=loss.detach(), adv_accuracy=(logits.detach().argmax(dim=1) == y).float().mean())
        return loss, stats
