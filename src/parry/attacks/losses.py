"""Per-sample attack losses, written so that the attack always *maximises* them.

- ``ce``: cross-entropy of the true class (untargeted) or minus that of the target.
- ``margin``: the C&W margin (Carlini & Wagner, "Towards Evaluating the Robustness of
  Neural Networks", IEEE S&P 2017): ``max_{j != y} z_j - z_y`` untargeted,
  ``z_t - max_{j != t} z_j`` targeted.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

LossFn = Callable[[Tensor, Tensor, "Tensor | None"], Tensor]


def cross_entropy_loss(logits: Tensor, y: Tensor, target: Tensor | None = None) -> Tensor:
    logits = logits.float()
    if target is not None:
        return -F.cross_entropy(logits, target, reduction="none")
    return F.cross_entropy(logits, y, reduction="none")


def _class_logit_and_best_other(logits: Tensor, cls: Tensor) -> tuple[Tensor, Tensor]:
    own = logits.gather(1, cls[:, None]).squeeze(1)
    others = logits.scatter(1, cls[:, None], float("-inf"))
    return own, others.amax(dim=1)


def margin_loss(logits: Tensor, y: Tensor, target: Tensor | None = None) -> Tensor:
    logits = logits.float()
    if target is not None:
        own, best_other = _class_logit_and_best_other(logits, target)
        return own - best_other
    own, best_other = _class_logit_and_best_other(logits, y)
    return best_other - own


LOSSES: dict[str, LossFn] = {"ce": cross_entropy_loss, "margin": margin_loss}


def get_loss(name: str) -> LossFn:
    """Look up a loss by name ('ce' or 'margin')."""
    if name not in LOSSES:
        raise ValueError(f"loss: unknown loss {name!r}; expected one of {sorted(LOSSES)}")
    return LOSSES[name]
