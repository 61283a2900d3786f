"""The Objective interface of robust training: one training loss per file.

An objective is configured once (eps, steps, beta, ...) and called on every batch:
``loss, stats = objective.loss(model, x, y, generator=g)``. The model comes in train mode;
adversarial examples are crafted with it in eval mode and frozen parameters
(``Classifier.attack_mode``), and the returned loss is computed in train mode, as the
reference codes of Madry et al. (2018), Zhang et al. (2019) and Wang et al. (2020) do.
``params()`` describes the objective for the checkpoint's recipe.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from parry.classifier import Classifier
from parry.threat import canonical_norm, check_eps
from parry.validation import check_nonneg_float, check_positive_int

Stats = dict[str, Tensor]


class Objective(ABC):
    """A training loss. Subclasses set ``name`` and implement :meth:`loss`."""

    name: ClassVar[str] = "objective"
    #: single-step objectives prone to catastrophic overfitting (Wong et al. 2020): the Trainer
    #: turns its held-out guard on by default for them (with APGD-CE as the held-out attack).
    needs_overfit_guard: ClassVar[bool] = False

    @abstractmethod
    def loss(self, model: Classifier, x: Tensor, y: Tensor, *,
             generator: torch.Generator | None = None) -> tuple[Tensor, Stats]:
        """The scalar training loss on the batch (differentiable in the model's parameters) and
        detached per-batch statistics (0-d tensors, batch means). ``generator`` drives every
        random draw (random starts), so a seeded run is reproducible."""

    def state(self) -> dict[str, Any]:
        """What the objective changes as it trains (JSON-friendly; kept in the Trainer's resume
        state so a resumed run continues where it stopped). Most objectives have none."""
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state`; the default refuses anything but an empty state."""
        if state:
            raise ValueError(f"{type(self).__name__}: has no training state, got {state!r}")

    def params(self) -> dict[str, Any]:
        """The configuration, JSON-friendly, with the objective's name (for the recipe)."""
        out: dict[str, Any] = {"name": self.name}
        out.update({k: v for k, v in vars(self).items() if not k.startswith("_")})
        return out

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items() if k != "name")
        return f"{type(self).__name__}({args})"


class AdversarialObjective(Objective, ABC):
    """Common configuration of the objectives that train on adversarial examples.

    Args:
        eps: radius of the training threat model (pixel space, finite, > 0).
        norm: 'linf' or 'l2'.
        steps: ascent steps of the inner maximisation.
        alpha: step size; None means ``2.5 * eps / steps`` (the PGD rule of Madry et al.).
    """

    def __init__(self, eps: float, norm: object = "linf", *, steps: int = 10, alpha: float | None = None) -> None:
        if isinstance(eps, Tensor):
            raise TypeError("eps: a training objective takes one float radius, not a per-sample tensor")
        self.eps = float(check_eps(eps))
        if self.eps <= 0:
            raise ValueError(f"eps: must be > 0 for adversarial training, got {eps}")
        self.norm = canonical_norm(norm)
        if self.norm not in ("linf", "l2"):
            raise ValueError(f"norm: {type(self).__name__} supports 'linf' and 'l2', got {norm!r}")
        self.steps = check_positive_int(steps, "steps")
        alpha = check_nonneg_float(alpha, "alpha", allow_none=True)
        if alpha is not None and alpha <= 0:
            raise ValueError(f"alpha: must be > 0, got {alpha}")
        self.alpha = alpha

    @property
    def step_size(self) -> float:
        """The ascent step actually used."""
        return self.alpha if self.alpha is not None else 2.5 * self.eps / self.steps

    def with_eps(self, eps: float) -> "AdversarialObjective":
        """A copy at radius ``eps`` (>= 0; the Trainer's eps warm-up); a fixed ``alpha`` is kept."""
        other = copy.copy(self)
        other.eps = float(check_eps(eps))
        return other


class CraftedObjective(AdversarialObjective, ABC):
    """An adversarial objective in two phases: ``craft`` the training examples with the current
    weights, then ``loss_on`` them. The split lets the Trainer's adversarial weight perturbation
    (:mod:`parry.defenses.training.awp`) evaluate the loss at perturbed weights on the same
    examples, without crafting them again."""

    @abstractmethod
    def craft(self, model: Classifier, x: Tensor, y: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The training examples (eval mode, frozen parameters)."""

    @abstractmethod
    def loss_on(self, model: Classifier, x: Tensor, y: Tensor, x_adv: Tensor) -> tuple[Tensor, Stats]:
        """The training loss of the clean batch ``(x, y)`` and its crafted examples ``x_adv``."""

    def loss(self, model: Classifier, x: Tensor, y: Tensor, *,
             generator: torch.Generator | None = None) -> tuple[Tensor, Stats]:
        return self.loss_on(model, x, y, self.craft(model, x, y, generator))


class CraftedCrossEntropy(CraftedObjective, ABC):
    """Cross-entropy on adversarial examples that ``craft`` makes (PGD-AT, FGSM-RS)."""

    def loss_on(self, model: Classifier, x: Tensor, y: Tensor, x_adv: Tensor) -> tuple[Tensor, Stats]:
        logits = model(x_adv)
        loss = F.cross_entropy(logits, y)
        accuracy = (logits.detach().argmax(dim=1) == y).float().mean()
        return loss, {"loss": loss.detach(), "adv_accuracy": accuracy}


def draw_seed(generator: torch.Generator | None) -> int:
    """A seed for an attack's own generator, drawn from ``generator`` (torch's global one when None)."""
    device = generator.device if generator is not None else "cpu"
    return int(torch.randint(0, 2**62, (1,), generator=generator, device=device).item())


def check_beta(beta: object) -> float:
    """The weight of a regularisation term: a finite float >= 0."""
    return float(check_nonneg_float(beta, "beta"))
