"""The Classifier wrapper: any ``nn.Module`` returning logits, in pixel space.

Normalisation (mean/std) lives inside the wrapper, so every eps is measured in the
input space the user sees. During an attack the wrapped model is put in eval mode
with frozen parameters, and both are restored afterwards, also when the attack raises.
On CPUs, image models also take an exact fast path during an attack (``fast=True``, the
default): the channels-last memory layout, matrix-product input gradients for thin
convolutions (:mod:`parry.thin_conv`) and max-pooling before the ReLU ahead of it
(:mod:`parry.pool_relu`); the parameters' own tensors are put back afterwards.
"""

from __future__ import annotations

import warnings
from contextlib import ExitStack, contextmanager
from typing import Iterator, Sequence

import torch
from torch import Tensor, nn

from .pool_relu import pool_before_relu
from .thin_conv import thin_conv_input_grads


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
        fast: during ``attack_mode`` on a CPU, hold 4-D weights and inputs in the channels-last
            memory layout, compute the input gradients of one-channel convolutions by matrix
            product and fold (:mod:`parry.thin_conv`), and max-pool before a ReLU that precedes
            the pool (:mod:`parry.pool_relu`). All compute the same function and gradients up to
            float rounding. Measured here (one thread, batch 169): forward passes 3.3x
            faster on the test LeNet, forward-backward passes 1.4x on the LeNet and the Madry
            CNN. A model whose forward cannot run channels-last (a ``view`` over convolution
            outputs) falls back to the default layout, with a warning. No effect on GPUs.
    """

    def __init__(
        self,
        model: nn.Module,
        num_classes: int | None = None,
        bounds: tuple[float, float] = (0.0, 1.0),
        mean: float | Sequence[float] | None = None,
        std: float | Sequence[float] | None = None,
        input_shape: Sequence[int] | None = None,
        fast: bool = True,
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
        if not isinstance(fast, bool):
            raise ValueError(f"fast: expected a bool, got {fast!r}")
        self.fast = fast
        self._layout: torch.memory_format | None = None  # channels_last inside a fast attack_mode
        self._kernels: list[tuple[nn.Parameter, Tensor]] = []  # (parameter, the caller's tensor)
        self.queries = 0  # images passed through forward (a Python int: no device sync)

    def forward(self, x: Tensor) -> Tensor:
        self.queries += x.shape[0]
        if self.mean is not None:
            x = x - self.mean.to(x.dtype)
        if self.std is not None:
            x = x / self.std.to(x.dtype)
        if self._layout is not None and x.ndim == 4:
            try:
                return self.model(x.contiguous(memory_format=self._layout))
            except RuntimeError as err:
                if "view size is not compatible" not in str(err):
                    raise
                self._drop_layout(err)
        return self.model(x)

    def _drop_layout(self, err: RuntimeError) -> None:
        """Give the weights their own layout back and run this classifier's attacks without
        channels-last from now on (the model reshapes with ``view``)."""
        warnings.warn(f"Classifier: the model cannot run in the channels-last layout ({err}); "
                      "attacks on it use the default layout", RuntimeWarning, stacklevel=3)
        for p, data in self._kernels:
            p.data = data
        self._kernels, self._layout, self.fast = [], None, False

    @property
    def device(self) -> torch.device:
        for tensor in self.model.parameters():
            return tensor.device
        for tensor in self.model.buffers():
            return tensor.device
        return torch.device("cpu")

    @contextmanager
    def attack_mode(self) -> Iterator["Classifier"]:
        """Eval mode, frozen parameters and (with ``fast`` on a CPU) the fast path for the
        duration; the previous state is restored, also when the body raises."""
        modes = [(m, m.training) for m in self.modules()]
        flags = [(p, p.requires_grad) for p in self.parameters()]
        fast = self.fast and self._layout is None and self.device.type == "cpu"  # outermost call only
        kernels = [(p, p.data) for p in self.parameters() if p.ndim == 4] if fast else []
        with ExitStack() as stack:
            try:
                self.eval()
                for p, _ in flags:
                    p.requires_grad_(False)
                if fast:
                    # .to, not .contiguous: a (C_out, 1, k, k) kernel counts as contiguous in
                    # both layouts, and only real channels-last strides make oneDNN use it
                    for p, data in kernels:
                        p.data = data.to(memory_format=torch.channels_last)
                    self._layout, self._kernels = torch.channels_last, kernels
                    stack.enter_context(thin_conv_input_grads(self.model))
                    stack.enter_context(pool_before_relu(self.model))
                yield self
            finally:
                for m, training in modes:
                    m.train(training)
                for p, flag in flags:
                    p.requires_grad_(flag)
                if fast:
                    for p, data in self._kernels:
                        p.data = data  # the caller's own tensors
                    self._layout, self._kernels = None, []


def as_classifier(model: nn.Module) -> Classifier:
    """Return ``model`` if it already is a Classifier, else wrap it with bounds (0, 1)."""
    if isinstance(model, Classifier):
        return model
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module or parry.Classifier, got {type(model).__name__}")
    return Classifier(model)
