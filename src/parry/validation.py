"""Input validation shared by every public entry point: clear errors, never silent fixes."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def check_inputs(x: object, bounds: tuple[float, float], input_shape: tuple[int, ...] | None = None,
                 name: str = "x") -> Tensor:
    """Check a batch of inputs: a non-empty float tensor (N, ...), finite, inside ``bounds``."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got dtype {x.dtype}")
    if x.ndim < 2:
        raise ValueError(f"{name}: expected a batch of shape (N, ...) with at least 2 dimensions, "
                         f"got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{name}: the batch is empty")
    if input_shape is not None and tuple(x.shape[1:]) != tuple(input_shape):
        raise ValueError(f"{name}: expected per-sample shape {tuple(input_shape)}, got {tuple(x.shape[1:])}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name}: contains NaN or inf")
    low, high = bounds
    lo, hi = x.aminmax()
    if lo < low or hi > high:
        raise ValueError(f"{name}: values must lie in the bounds [{low}, {high}], found "
                         f"[{float(lo):.4g}, {float(hi):.4g}]; scale the data or set the classifier's bounds")
    return x


def check_labels(y: object, n: int, device: torch.device, name: str = "y",
                 num_classes: int | None = None) -> Tensor:
    """Check integer class labels of shape (n,); move them to ``device``."""
    if not isinstance(y, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor of class indices, got {type(y).__name__}")
    if y.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise TypeError(f"{name}: expected an integer tensor of class indices, got dtype {y.dtype}")
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"{name}: expected shape ({n},) to match the batch, got {tuple(y.shape)}")
    y = y.to(device=device, dtype=torch.int64)
    if num_classes is not None and ((y < 0).any() or (y >= num_classes).any()):
        raise ValueError(f"{name}: labels must lie in [0, {num_classes - 1}], found "
                         f"[{int(y.min())}, {int(y.max())}]")
    return y


def check_logits(logits: object, n: int, num_classes: int | None) -> Tensor:
    """Check a model's output: finite float logits of shape (n, C), C >= 2."""
    if not isinstance(logits, Tensor):
        raise TypeError(f"model: must return a tensor of logits, returned {type(logits).__name__}")
    if logits.ndim != 2 or logits.shape[0] != n:
        raise ValueError(f"model: must return logits of shape (N, num_classes) = ({n}, C), "
                         f"returned shape {tuple(logits.shape)}")
    if logits.shape[1] < 2:
        raise ValueError(f"model: must return at least 2 logits per sample, returned {logits.shape[1]}")
    if num_classes is not None and logits.shape[1] != num_classes:
        raise ValueError(f"model: the classifier declares {num_classes} classes but returned "
                         f"{logits.shape[1]} logits")
    if not logits.is_floating_point():
        raise TypeError(f"model: must return floating-point logits, returned dtype {logits.dtype}")
    if not torch.isfinite(logits).all():
        raise ValueError("model: returned NaN or inf logits")
    return logits


def check_positive_int(value: object, name: str, minimum: int = 1) -> int:
    """An int >= ``minimum`` (bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, got {value!r}")
    return value


def check_nonneg_float(value: object, name: str, allow_none: bool = False) -> float | None:
    """A finite float >= 0 (or None when allowed)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    value = float(value)
    if not (value >= 0 and value != float("inf")):
        raise ValueError(f"{name}: must be finite and >= 0, got {value}")
    return value


def check_positive_float(value: object, name: str, allow_none: bool = False) -> float | None:
    """A finite float > 0 (or None when allowed); bools are refused."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    value = float(value)
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name}: must be finite and > 0, got {value}")
    return value


def check_fraction(value: object, name: str) -> float:
    """A float in the open interval (0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < float(value) < 1.0:
        raise ValueError(f"{name}: must lie in (0, 1), got {value!r}")
    return float(value)
