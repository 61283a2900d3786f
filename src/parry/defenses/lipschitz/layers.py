"""Spectrally normalised Linear and Conv2d layers: operator L2 norm 1 by construction.

Each layer keeps an unconstrained ``weight`` and uses ``weight / sigma(weight)``, where
``sigma`` is the largest singular value of the layer's linear map, estimated by power
iteration with a persistent vector (Miyato et al., "Spectral Normalization for Generative
Adversarial Networks", ICLR 2018): ``n_power_iterations`` steps per training forward pass,
none in eval mode. For a convolution the iteration runs on the convolution operator at the
layer's ``input_size``, stride and zero padding (not on the reshaped kernel, whose norm can
be off by a factor of the kernel size either way), as in the "Lipschitz-margin training"
of Tsuzuku, Sato & Sugiyama, NeurIPS 2018. Weights start orthogonal, the Parseval-network
initialisation of Cisse et al., "Parseval Networks: Improving Robustness to Adversarial
Examples", ICML 2017.

Power iteration approaches ``sigma`` from below, so the normalised norm can exceed 1 by a
little while the estimate converges; :func:`tighten_` runs extra iterations (do it after
training). Certificates never rely on this: :func:`parry.defenses.lipschitz.lipschitz_bound`
measures every layer afresh.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from parry.defenses.lipschitz.power_iteration import power_iteration
from parry.validation import check_positive_int


def _pair(value: int | tuple[int, int], name: str, minimum: int) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or any(isinstance(p, bool) or not isinstance(p, int) or p < minimum for p in pair):
        raise ValueError(f"{name}: expected an int >= {minimum} or a pair of them, got {value!r}")
    return pair  # type: ignore[return-value]


class _SpectralLayer(nn.Module):
    """Shared machinery: ``weight`` (Parameter), ``bias`` (Parameter or None) and the
    persistent unit vector ``v`` (buffer) of the power iteration, in the layer's input space."""

    weight: nn.Parameter
    bias: nn.Parameter | None
    v: Tensor

    def __init__(self, n_power_iterations: int) -> None:
        super().__init__()
        self.n_power_iterations = check_positive_int(n_power_iterations, "n_power_iterations")

    def _init(self, weight_shape: tuple[int, ...], v_shape: tuple[int, ...], bias: bool) -> None:
        self.weight = nn.Parameter(torch.empty(weight_shape))
        nn.init.orthogonal_(self.weight)
        self.bias = nn.Parameter(torch.zeros(weight_shape[0])) if bias else None
        v = torch.randn(v_shape)
        self.register_buffer("v", v / v.norm())
        self.power_iterate_(100)  # a fair start: eval-mode weights are normalised from the outset

    def _linear_map(self, weight: Tensor, v: Tensor) -> Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def power_iterate_(self, iterations: int = 100, tol: float = 1e-7) -> float:
        """Run up to ``iterations`` power-iteration steps on the raw weight, update ``v`` and
        return the estimate of the raw weight's operator norm."""
        weight = self.weight.detach()
        sigma, v = power_iteration(lambda u: self._linear_map(weight, u), tuple(self.v.shape),
                                   iterations=iterations, tol=tol, v0=self.v, device=self.v.device,
                                   dtype=self.v.dtype)
        self.v.copy_(v)
        return sigma

    def sigma(self) -> Tensor:
        """The current estimate of the raw weight's operator norm (differentiable in ``weight``)."""
        if self.training:
            self.power_iterate_(self.n_power_iterations, tol=0.0)
        # In fp32 even under autocast (a bf16 norm is off by ~0.4 %); on a copy of v, which a
        # later forward pass updates in place while this graph may still need it.
        with torch.autocast(self.v.device.type, enabled=False):
            return self._linear_map(self.weight.float(), self.v.clone().float()).norm().clamp_min(1e-12)

    def normalised_weight(self) -> Tensor:
        """``weight / sigma``: the weight the forward pass uses (operator norm about 1)."""
        return self.weight / self.sigma()


class SpectralLinear(_SpectralLayer):
    """A Linear layer whose weight is divided by its spectral norm: ``||W x||_2 <= ||x||_2``."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 n_power_iterations: int = 1) -> None:
        super().__init__(n_power_iterations)
        self.in_features = check_positive_int(in_features, "in_features")
        self.out_features = check_positive_int(out_features, "out_features")
        self._init((out_features, in_features), (1, in_features), bias)

    def _linear_map(self, weight: Tensor, v: Tensor) -> Tensor:
        return F.linear(v, weight)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"x: expected {self.in_features} features in the last dimension, got shape "
                             f"{tuple(x.shape)}")
        return F.linear(x, self.normalised_weight(), self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class SpectralConv2d(_SpectralLayer):
    """A Conv2d (zero padding, no groups or dilation) normalised by the operator norm of the
    convolution on inputs of spatial size ``input_size`` (the norm depends on it, so inputs
    of any other size are refused)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int], stride:
                 int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0, bias: bool = True, *,
                 input_size: int | tuple[int, int], n_power_iterations: int = 1) -> None:
        super().__init__(n_power_iterations)
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        self.kernel_size = _pair(kernel_size, "kernel_size", 1)
        self.stride = _pair(stride, "stride", 1)
        self.padding = _pair(padding, "padding", 0)
        self.input_size = _pair(input_size, "input_size", 1)
        for i, axis in enumerate(("height", "width")):
            if self.input_size[i] + 2 * self.padding[i] < self.kernel_size[i]:
                raise ValueError(f"input_size: the padded {axis} {self.input_size[i]} + 2*{self.padding[i]} "
                                 f"is smaller than the kernel ({self.kernel_size[i]})")
        self._init((out_channels, in_channels, *self.kernel_size), (1, in_channels, *self.input_size), bias)

    def _linear_map(self, weight: Tensor, v: Tensor) -> Tensor:
        return F.conv2d(v, weight, stride=self.stride, padding=self.padding)

    @property
    def output_size(self) -> tuple[int, int]:
        return tuple(math.floor((n + 2 * p - k) / s) + 1 for n, p, k, s in  # type: ignore[return-value]
                     zip(self.input_size, self.padding, self.kernel_size, self.stride))

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels or tuple(x.shape[-2:]) != self.input_size:
            raise ValueError(f"x: expected shape (N, {self.in_channels}, {self.input_size[0]}, "
                             f"{self.input_size[1]}) (the normalisation holds for this input size only), "
                             f"got {tuple(x.shape)}")
        return F.conv2d(x, self.normalised_weight(), self.bias, stride=self.stride, padding=self.padding)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, input_size={self.input_size}, bias={self.bias is not None}")


def tighten_(model: nn.Module, iterations: int = 500) -> int:
    """Run ``iterations`` extra power-iteration steps in every spectral layer of ``model`` (after
    training, so that eval-mode weights have operator norm 1 up to about 1e-5). Returns the
    number of layers updated."""
    check_positive_int(iterations, "iterations")
    layers = [m for m in model.modules() if isinstance(m, _SpectralLayer)]
    for layer in layers:
        layer.power_iterate_(iterations)
    return len(layers)
