"""Adversarial weight perturbation (AWP; Wu, Xia & Wang, "Adversarial Weight Perturbation Helps
Robust Generalization", NeurIPS 2020).

Adversarial training overfits: after some epochs the training loss keeps falling while
held-out robust accuracy stalls or drops (Rice et al., ICML 2020). AWP flattens the loss
landscape in the weights as well as in the inputs. At every step, after the objective has
crafted its adversarial examples, each weight tensor ``w`` is moved by
``gamma * ||w|| * g / ||g||``, where ``g`` is the gradient of the objective's loss on those
examples with respect to ``w`` (one ascent step, normalised per layer); the gradient of the
training loss is taken at the perturbed weights; after the optimiser's step the perturbation
is subtracted again. As in the paper's code, the perturbed tensors are the weights with more
than one dimension (convolution kernels, linear matrices), not biases or normalisation scales,
and the paper's ``gamma`` is 5e-3 for PGD-AT, TRADES and MART.

The ascent reuses the step's crafted examples (the objective must be a
:class:`~parry.defenses.training.objective.CraftedObjective`), so a step costs one more forward
and backward pass (with weight gradients) on top of PGD-10 training's eleven. The extra
forward pass leaves BatchNorm running statistics as they were.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable

import torch
from torch import Tensor, nn

from parry.defenses.training.objective import CraftedObjective, Objective

#: What a perturbation step did: the parameters it moved and by how much.
Perturbation = list[tuple[nn.Parameter, Tensor]]


@dataclass(frozen=True)
class WeightPerturbation:
    """AWP of relative size ``gamma`` per weight tensor, from epoch ``start_epoch`` (0-based) on."""

    gamma: float = 5e-3
    start_epoch: int = 0

    def __post_init__(self) -> None:
        if (isinstance(self.gamma, bool) or not isinstance(self.gamma, (int, float))
                or not math.isfinite(self.gamma) or not 0.0 < self.gamma <= 1.0):
            raise ValueError(f"awp: gamma must lie in (0, 1], got {self.gamma!r}")
        if isinstance(self.start_epoch, bool) or not isinstance(self.start_epoch, int) or self.start_epoch < 0:
            raise ValueError(f"awp: start_epoch must be an int >= 0, got {self.start_epoch!r}")

    def params(self) -> dict[str, Any]:
        """JSON-friendly description (for the recipe)."""
        return asdict(self)

    def perturb(self, model: nn.Module, loss: Callable[[], Tensor]) -> Perturbation:
        """Move the model's weights up ``loss()`` (evaluated once, at the current weights) and
        return the moves for :meth:`restore`."""
        weights = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
        buffers = [b.detach().clone() for b in model.buffers()]
        grads = torch.autograd.grad(loss(), weights, allow_unused=True)
        moves: Perturbation = []
        with torch.no_grad():
            for buffer, saved in zip(model.buffers(), buffers):
                buffer.copy_(saved)
            for weight, grad in zip(weights, grads):
                if grad is None:  # a weight the loss does not use
                    continue
                move = grad * (self.gamma * weight.norm() / (grad.norm() + 1e-20))
                weight.add_(move)
                moves.append((weight, move))
        return moves

    @staticmethod
    def check_objective(objective: type[Objective] | Objective) -> None:
        """Refuse an objective (or objective class) that does not craft its examples first."""
        kind = objective if isinstance(objective, type) else type(objective)
        if not issubclass(kind, CraftedObjective):
            raise ValueError(f"awp: needs an objective that crafts its examples first (PGDAT, FGSMRS, TRADES, "
                             f"MART), got {kind.__name__}")

    @staticmethod
    @torch.no_grad()
    def restore(moves: Perturbation) -> None:
        """Take the perturbation off again (after the optimiser's step)."""
        for weight, move in moves:
            weight.sub_(move)
