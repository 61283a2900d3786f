"""Optimiser and learning-rate schedule specifications of a training run.

Schedules are functions of the run's progress p in [0, 1] (the fraction of steps, or of the
wall-clock budget), so a time budget stretches the same schedule over the time available:

- ``constant``; ``cosine``: 0.5 (1 + cos(pi p)) (Loshchilov & Hutter, "SGDR", ICLR 2017);
- ``step``: x0.1 at 50 % and 75 % (He et al. 2016; Madry et al. 2018);
- ``one-cycle``: linear 0 -> lr at 40 %, then -> 0 (the cyclic rate of Wong et al., ICLR 2020).

Optimisers: ``sgd`` (weight decay as an L2 term in the gradient), ``adam`` (likewise: Adam then
rescales the decay with the gradient), and ``adamw``, Adam with decoupled weight decay: each step
shrinks the weights by ``lr * weight_decay`` apart from the Adam update (Loshchilov & Hutter,
"Decoupled Weight Decay Regularization", ICLR 2019).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Iterable

import torch

from parry.validation import check_nonneg_float, check_positive_float

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "step", "one-cycle")


def check_schedule(schedule: object) -> str:
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule: must be one of {SCHEDULES}, got {schedule!r}")
    return str(schedule)


def lr_factor(schedule: str, progress: float) -> float:
    """Multiplier of the base learning rate at ``progress`` in [0, 1] of the run."""
    p = min(max(progress, 0.0), 1.0)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * p))
    if schedule == "step":
        return 0.1 ** ((p >= 0.5) + (p >= 0.75))
    if schedule == "one-cycle":
        return p / 0.4 if p < 0.4 else (1.0 - p) / 0.6
    return 1.0


@dataclass(frozen=True)
class OptimizerSpec:
    """Which optimiser and its hyper-parameters; ``momentum`` and ``nesterov`` apply to SGD only."""

    name: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise ValueError(f"optimizer: name must be one of {OPTIMIZERS}, got {self.name!r}")
        check_positive_float(self.lr, "lr")
        check_nonneg_float(self.weight_decay, "weight_decay")
        if not 0.0 <= check_nonneg_float(self.momentum, "momentum") < 1.0:
            raise ValueError(f"momentum: must lie in [0, 1), got {self.momentum}")
        if not isinstance(self.nesterov, bool):
            raise ValueError(f"nesterov: expected a bool, got {self.nesterov!r}")

    def build(self, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
        if self.name == "sgd":
            return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay,
                                   nesterov=self.nesterov)
        if self.name == "adamw":
            return torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        return torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)

    def params(self) -> dict[str, Any]:
        return asdict(self)
