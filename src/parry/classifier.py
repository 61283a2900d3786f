"""The Classifier wrapper: any ``nn.Module`` returning logits, in pixel space.

Normalisation (mean/std) lives inside the wrapper, so every eps is measured in the
input space the user sees. During an attack the wrapped model is put in eval mode
with frozen parameters, and both are restored afterwards, also when the attack raises.
With ``channels_last=True`` image models also run in the channels-last memory layout during
an attack; the parameters' own tensors are put back afterwards.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import torch
from torch import Tensor, nn


def _as_channel_tensor(value: float | Sequence[float] | None, name: str) -> Tensor | None:
    if value is None:
        return None
    t = torch.as_tensor(value, dtype=torch.float32).flatten()
    if not torch.isfinite(t).all():
        raise ValueError(f"{name}: must be finite, got {value}")
    return t


class Classifier(nn.Module):
    """Wraps a model that maps inputs in ``bounds`` to logits of shape (N, num_classes).

    Args:
        model: the network; it receives ``(x - mean) / std`` when mean/std are given.
        num_classes: expected number of logits (checked on every attack's first forward);
            inferred from the first output when None.
        bounds: (low, high) of valid inputs, default (0, 1).
        mean, std: per-channel normalisation applied inside ``forward``.
        input_shape: expected per-sample shape, e.g. (1, 28, 28); checked when given.
        channels_last: during ``attack_mode``, hold 4-D weights and inputs in the channels-last
            memory layout (the same function up to float rounding). Off by default: measured
            here on one CPU thread it made Square's forward passes on the test LeNet 2x faster
            but PGD on the Madry CNN about 12 % slower; turn it on where it pays.
    """

    def __init__(
        self,
        model: nn.Module,
        num_classes: int | None = None,
        bounds: tuple[float, float] = (0.0, 1.0),
        mean: float | Sequence[float] | None = None,
        std: float | Sequence[float] | None = None,
        input_shape: Sequence[int] | None = None,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
        if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 2):
            raise ValueError(f"num_classes: must be an int >= 2, got {num_classes!r}")
        low, high = (float(b) for b in bounds)
        if not low < high:
            raise ValueError(f"bounds: low must be < high, got {bounds}")
        mean_t, std_t = _as_channel_tensor(mean, "mean"), _as_channel_tensor(std, "std")
        if std_t is not None and (std_t <= 0).any():
            raise ValueError(f"std: must be > 0, got {std}")
        self.model = model
        self.num_classes = num_classes
        self.bounds = (low, high)
        self.input_shape = tuple(int(s) for s in input_shape) if input_shape is not None else None
        self.register_buffer("mean", mean_t.view(1, -1, 1, 1) if mean_t is not None else None)
        self.register_buffer("std", std_t.view(1, -1, 1, 1) if std_t is not None else None)
        if not isinstance(channels_last, bool):
            raise ValueError(f"channels_last: expected a bool, got {channels_last!r}")
        self.channels_last = channels_last
        self._layout: torch.memory_format | None = None  # channels_last inside attack_mode
        self.queries = 0  # images passed through forward (a Python int: no device sync)

    def forward(self, x: Tensor) -> Tensor:
        self.queries += x.shape[0]
        if self.mean is not None:
            x = x - self.mean.to(x.dtype)
        if self.std is not None:
            x = x / self.std.to(x.dtype)
        if self._layout is not None and x.ndim == 4:
            x = x.contiguous(memory_format=self._layout)
        return self.model(x)

    @property
    def device(self) -> torch.device:
        for tensor in self.model.parameters():
            return tensor.device
        for tensor in self.model.buffers():
            return tensor.device
        return torch.device("cpu")

    @contextmanager
    def attack_mode(self) -> Iterator["Classifier"]:
        """Eval mode, frozen parameters and (with ``channels_last``) the channels-last layout for
        the duration; the previous state is restored, also when the body raises."""
        modes = [(m, m.training) for m in self.modules()]
        flags = [(p, p.requires_grad) for p in self.parameters()]
        kernels = [(p, p.data) for p in self.parameters() if p.ndim == 4] if self.channels_last else []
        outer_layout = self._layout
        try:
            self.eval()
            for p, _ in flags:
                p.requires_grad_(False)
            if kernels:
                for p, data in kernels:
                    p.data = data.contiguous(memory_format=torch.channels_last)
                self._layout = torch.channels_last
            yield self
        finally:
            for m, training in modes:
                m.train(training)
            for p, flag in flags:
                p.requires_grad_(flag)
            for p, data in kernels:
                p.data = data  # the caller's own tensors
            self._layout = outer_layout


def as_classifier(model: nn.Module) -> Classifier:
    """Return ``model`` if it already is a Classifier, else wrap it with bounds (0, 1)."""
    if isinstance(model, Classifier):
        return model
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module or parry.Classifier, got {type(model).__name__}")
    return Classifier(model)
