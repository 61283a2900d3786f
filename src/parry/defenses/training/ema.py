"""An exponential moving average (EMA) of a model's weights, for evaluation and checkpoints.

Averaging the iterates of stochastic optimisation (Polyak & Juditsky, "Acceleration of
stochastic approximation by averaging", SIAM J. Control Optim. 1992) smooths the noise of the
last steps. Gowal et al. ("Uncovering the limits of adversarial training against norm-bounded
adversarial examples", 2020, Sec. 4.4) found an EMA of the weights (decay 0.995 per step) to
raise the robust accuracy of adversarially trained models, at the cost of one update per step.

After ``t`` updates the decay is ``min(decay, (1 + t) / (10 + t))`` (the warm-up of
TensorFlow's ``ExponentialMovingAverage`` with ``num_updates``), so the first averages are not
dominated by the random initialisation. Floating-point entries of the state dict (parameters
and BatchNorm statistics) are averaged in float32; integer entries (batch counters) are copied.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import Tensor, nn


def check_decay(decay: object) -> float:
    """``decay`` as a float in (0, 1), else a ValueError naming ``ema_decay``."""
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0.0 < float(decay) < 1.0:
        raise ValueError(f"ema_decay: must lie in (0, 1), got {decay!r}")
    return float(decay)


class WeightAverage:
    """The EMA of ``model``'s state dict with the given per-step ``decay`` in (0, 1)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = check_decay(decay)
        self.updates = 0
        self.average = {k: v.detach().float().clone() if v.is_floating_point() else v.detach().clone()
                        for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the model's current weights into the average (after an optimiser step)."""
        self.updates += 1
        weight = 1.0 - min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))
        for key, value in model.state_dict().items():
            average = self.average[key]
            if average.is_floating_point():
                average.lerp_(value.detach().to(average.dtype), weight)
            else:
                average.copy_(value)

    @contextmanager
    def swapped_into(self, model: nn.Module) -> Iterator[None]:
        """The model holds the averaged weights for the duration and its own ones afterwards
        (also when the body raises); the parameters keep their identity and memory layout."""
        live = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self.average)
        try:
            yield
        finally:
            model.load_state_dict(live)

    def load(self, average: dict[str, Tensor], updates: int) -> None:
        """Restore a saved average (resume)."""
        if set(average) != set(self.average):
            raise ValueError("ema: the saved average does not match the model's state dict")
        self.average = {k: v.to(self.average[k].device) for k, v in average.items()}
        self.updates = int(updates)
