"""Per-sample attack losses, written so that the attack always *maximises* them.

- ``ce``: cross-entropy of the true class (untargeted) or minus that of the target.
- ``margin``: the C&W margin (Carlini & Wagner, "Towards Evaluating the Robustness of
  Neural Networks", IEEE S&P 2017): ``max_{j != y} z_j - z_y`` untargeted,
  ``z_t - max_{j != t} z_j`` targeted.
- ``dlr``: the Difference of Logits Ratio of Croce & Hein ("Reliable evaluation of
  adversarial robustness with an ensemble of diverse parameter-free attacks", ICML 2020),
  invariant to shifts and rescalings of the logits. With ``z`` sorted as
  ``z_pi1 >= z_pi2 >= ...``: untargeted ``-(z_y - max_{j != y} z_j) / (z_pi1 - z_pi3)``,
  targeted ``-(z_y - z_t) / (z_pi1 - (z_pi3 + z_pi4) / 2)``.
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


_DLR_DENOMINATOR_FLOOR = 1e-12  # as in the paper's code: keeps the ratio finite on tied logits


def dlr_loss(logits: Tensor, y: Tensor, target: Tensor | None = None) -> Tensor:
    """Difference of Logits Ratio (Croce & Hein 2020): untargeted needs 3 classes, targeted 4."""
    logits = logits.float()
    needed = 3 if target is None else 4
    if logits.shape[1] < needed:
        raise ValueError(f"loss: the {'targeted ' if target is not None else ''}DLR loss needs at least "
                         f"{needed} classes, the model returns {logits.shape[1]}")
    top = logits.topk(needed, dim=1).values
    own = logits.gather(1, y[:, None]).squeeze(1)
    if target is not None:
        scale = top[:, 0] - 0.5 * (top[:, 2] + top[:, 3])
        return (logits.gather(1, target[:, None]).squeeze(1) - own) / (scale + _DLR_DENOMINATOR_FLOOR)
    _, best_other = _class_logit_and_best_other(logits, y)
    return (best_other - own) / (top[:, 0] - top[:, 2] + _DLR_DENOMINATOR_FLOOR)


LOSSES: dict[str, LossFn] = {"ce": cross_entropy_loss, "margin": margin_loss, "dlr": dlr_loss}


def get_loss(name: str) -> LossFn:
    """Look up a loss by name ('ce', 'margin' or 'dlr')."""
    if name not in LOSSES:
        raise ValueError(f"loss: unknown loss {name!r}; expected one of {sorted(LOSSES)}")
    return LOSSES[name]
