"""Defensive distillation (Papernot, McDaniel, Wu, Jha & Swami, "Distillation as a Defense to
Adversarial Perturbations against Deep Neural Networks", IEEE S&P 2016).

A student network is trained on the soft labels ``softmax(teacher(x) / T)`` of a teacher
trained at the same temperature ``T``, with its own logits divided by ``T`` during training:

    - sum_c softmax(teacher(x) / T)_c * log softmax(student(x) / T)_c

At test time the temperature is 1: the trained Classifier is used as it is (its logits are
never divided by T outside this loss), so its softmax saturates and its gradients vanish.
That is gradient masking, not robustness: Carlini & Wagner (S&P 2017) break defensive
distillation with attacks on the logits; evaluate it with strong, logit-based attacks.

``teacher=None`` is the paper's first stage: train the teacher itself at temperature ``T``
(cross-entropy of ``student(x) / T`` on the hard labels).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from parry.classifier import Classifier
from parry.defenses.training.objective import Objective, Stats
from parry.validation import check_positive_float


def check_teacher(teacher: object, name: str = "teacher") -> Classifier:
    """A parry Classifier (the frozen network whose outputs are distilled)."""
    if not isinstance(teacher, Classifier):
        raise ValueError(f"{name}: expected a parry Classifier, got {type(teacher).__name__}")
    return teacher


def check_teacher_id(teacher_id: object) -> str | None:
    """How a recipe names the teacher (e.g. its recipe or checkpoint): a string, or None."""
    if teacher_id is not None and not isinstance(teacher_id, str):
        raise ValueError(f"teacher_id: expected a string, got {type(teacher_id).__name__}")
    return teacher_id


def teacher_name(teacher: Classifier, teacher_id: str | None) -> str:
    """The teacher's name in an objective's ``params()``: ``teacher_id``, else its network's class."""
    return teacher_id or type(teacher.model).__name__


def with_teacher_name(params: dict[str, Any], teacher: Classifier, teacher_id: str | None) -> dict[str, Any]:
    """``params`` with the teacher named by :func:`teacher_name` in place of ``teacher_id``."""
    out = {k: v for k, v in params.items() if k != "teacher_id"}
    out["teacher"] = teacher_name(teacher, teacher_id)
    return out


def teacher_logits(teacher: Classifier, student: Classifier, x: Tensor) -> Tensor:
    """The teacher's logits at ``x``: eval mode, frozen parameters, no graph. Refuses a teacher
    that is the student itself or whose number of classes differs."""
    if teacher is student:
        raise ValueError("teacher: must be a separate network from the student being trained")
    with teacher.attack_mode(), torch.no_grad():
        logits = teacher(x).float()
    if logits.ndim != 2:
        raise ValueError(f"teacher: must return (N, C) logits, got shape {tuple(logits.shape)}")
    return logits


class LogitsCache:
    """Frozen teachers' logits at the last batch they were asked about, kept while that tensor
    is the same object and unchanged: the Trainer's adversarial weight perturbation evaluates
    ``loss_on`` twice on the same crafted examples, and a teacher's outputs depend on them only."""

    def __init__(self) -> None:
        self._key: tuple[Tensor, int] | None = None
        self._logits: list[Tensor] = []

    def get(self, teachers: Sequence[Classifier], student: Classifier, x: Tensor) -> list[Tensor]:
        """``[teacher_logits(t, student, x) for t in teachers]``, computed once per batch."""
        if self._key is None or self._key[0] is not x or self._key[1] != x._version:
            self._logits = [teacher_logits(t, student, x) for t in teachers]
            self._key = (x, x._version)
        return self._logits


def check_same_classes(teacher_out: Tensor, student_out: Tensor) -> None:
    """Refuse a teacher and a student with different numbers of classes."""
    if teacher_out.shape != student_out.shape:
        raise ValueError(f"teacher: outputs {tuple(teacher_out.shape)} but the student outputs "
                         f"{tuple(student_out.shape)}; they must have the same classes")


def soft_cross_entropy(logits: Tensor, target_probs: Tensor) -> Tensor:
    """Batch mean of ``- sum_c p_c log softmax(logits)_c``."""
    return -(target_probs * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


class DefensiveDistillation(Objective):
    """Train the model on a teacher's soft labels at temperature ``temperature``.

    Args:
        teacher: the trained teacher (a Classifier over the same inputs and classes), used in
            eval mode with frozen parameters; None trains the teacher itself at ``T`` on the
            hard labels (the first stage).
        temperature: the distillation temperature T (finite, > 0; the paper studies T from 1
            to 100 and reports the largest effect at high T). Test time uses T = 1.
        teacher_id: how the recipe names the teacher (e.g. a checkpoint path); default: the
            teacher network's class name.
    """

    name = "distillation"

    def __init__(self, teacher: Classifier | None = None, *, temperature: float = 100.0,
                 teacher_id: str | None = None) -> None:
        self.teacher = None if teacher is None else check_teacher(teacher)
        self.temperature = float(check_positive_float(temperature, "temperature"))
        self.teacher_id = check_teacher_id(teacher_id)

    def params(self) -> dict[str, Any]:
        teacher = None if self.teacher is None else teacher_name(self.teacher, self.teacher_id)
        return {"name": self.name, "temperature": self.temperature, "teacher": teacher}

    def loss(self, model: Classifier, x: Tensor, y: Tensor, *,
             generator: torch.Generator | None = None) -> tuple[Tensor, Stats]:
        t = self.temperature
        logits = model(x)
        if self.teacher is None:
            loss = F.cross_entropy(logits / t, y)
            stats = {"loss": loss.detach()}
        else:
            soft = F.softmax(teacher_logits(self.teacher, model, x) / t, dim=1)
            check_same_classes(soft, logits)
            loss = soft_cross_entropy(logits / t, soft)
            stats = {"loss": loss.detach(), "teacher_agreement": (logits.detach().argmax(dim=1)
                                                                  == soft.argmax(dim=1)).float().mean()}
        stats["accuracy"] = (logits.detach().argmax(dim=1) == y).float().mean()
        return loss, stats
