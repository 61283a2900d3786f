"""Provable upper bounds on the L2 operator norm of affine layers (their linear part).

Power iteration (:mod:`parry.defenses.lipschitz.power_iteration`) approaches a norm from
below, so a product of its estimates is not, strictly, a bound. The values here are upper
bounds by construction, computed in float64:

- Linear: the largest singular value of the weight, by SVD.
- Conv2d (zero padding, stride s, no groups or dilation) whose matrix has at most
  ``DENSE_LIMIT`` entries: the exact norm of that matrix, written out from the kernel (each
  entry is a kernel weight, copied exactly) and measured through the largest eigenvalue of its
  smaller Gram matrix. Larger ones: the zero-padded convolution is a
  crop of a circular convolution on a grid of size ``H + 2 * padding`` rounded up to a
  multiple of s (no valid output wraps around), and cropping and zero-embedding have norm at
  most 1. The strided circular convolution is, after splitting the input into its s x s
  polyphase components, a stride-1 circular convolution with ``C_in * s^2`` input channels,
  whose norm is the largest spectral norm of the DFT of its kernel over the frequencies
  (Sedghi, Gupta & Long, "The Singular Values of Convolutional Layers", ICLR 2019).
- BatchNorm in eval mode: ``max |gamma| / sqrt(running_var + eps)``.
- AvgPool2d (no padding, or padding counted): ``sqrt(||A||_1 ||A||_inf)`` with the row sums 1
  and column sums at most ``ceil(k_h / s_h) * ceil(k_w / s_w) / (k_h * k_w)``.
- AdaptiveAvgPool2d to 1 x 1 (a global average): ``1 / sqrt(H * W)``.

The spectral layers of this package are measured on the weight their forward pass uses.
Rounding in float64 is far below a relative 1e-9; the network's own forward pass in float32
differs from the exact function by about 1e-6 of the logits' scale, which certificates at
margins of that size cannot exclude.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn.modules.utils import _pair

from parry.defenses.lipschitz.layers import SpectralConv2d, SpectralLinear

#: Layers with a provable bound here.
CERTIFIABLE = (nn.Linear, nn.Conv2d, nn.BatchNorm1d, nn.BatchNorm2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
               SpectralLinear, SpectralConv2d)


def matrix_norm_bound(weight: Tensor) -> float:
    """The largest singular value of a 2-D weight (float64 SVD)."""
    return float(torch.linalg.matrix_norm(weight.detach().double(), ord=2))


#: Largest convolution matrix (output size x input size) whose norm is computed exactly.
DENSE_LIMIT = 2 ** 25


def conv2d_norm_bound(weight: Tensor, input_size: tuple[int, int], stride: tuple[int, int],
                      padding: tuple[int, int]) -> float:
    """Upper bound on the operator norm of ``conv2d(x, weight, stride, padding)`` (zeros) on
    inputs of spatial size ``input_size``: exact up to float64 rounding where the matrix has
    at most ``DENSE_LIMIT`` entries, else the Fourier bound (see the module docstring)."""
    matrix = conv2d_matrix(weight, input_size, stride, padding, limit=DENSE_LIMIT)
    if matrix is None:
        return fourier_conv2d_bound(weight, input_size, stride, padding)
    gram = matrix @ matrix.T if matrix.shape[0] <= matrix.shape[1] else matrix.T @ matrix
    return math.sqrt(max(float(torch.linalg.eigvalsh(gram)[-1]), 0.0))


def conv2d_matrix(weight: Tensor, input_size: tuple[int, int], stride: tuple[int, int],
                  padding: tuple[int, int], limit: int | None = None) -> Tensor | None:
    """The float64 matrix (``C_out * H_out * W_out`` x ``C_in * H * W``, row-major like the
    tensors) of the zero-padded convolution, or None when it would have more than ``limit``
    entries."""
    w = weight.detach().double()
    c_out, c_in, kh, kw = w.shape
    (h, wd), (ph, pw) = input_size, padding
    pixels = torch.arange(1, h * wd + 1, dtype=torch.float64, device=w.device).reshape(1, 1, h, wd)
    # per kernel offset and output position, the input pixel it reads (-1: padding)
    source = torch.nn.functional.unfold(torch.nn.functional.pad(pixels, (pw, pw, ph, ph)), (kh, kw),
                                        stride=stride)[0].long() - 1
    n_out = source.shape[1]
    if limit is not None and c_out * n_out * c_in * h * wd > limit:
        return None
    offset, position = (source >= 0).nonzero(as_tuple=True)
    matrix = torch.zeros(c_out, n_out, c_in, h * wd, dtype=torch.float64, device=w.device)
    matrix[:, position, :, source[offset, position]] = w.reshape(c_out, c_in, kh * kw)[:, :, offset].permute(2, 0, 1)
    return matrix.reshape(c_out * n_out, c_in * h * wd)


def fourier_conv2d_bound(weight: Tensor, input_size: tuple[int, int], stride: tuple[int, int],
                         padding: tuple[int, int]) -> float:
    """Upper bound on the operator norm of the zero-padded ``conv2d(x, weight, stride,
    padding)``: the norm of the strided circular convolution it is a crop of (see the module
    docstring)."""
    w = weight.detach().double()
    c_out, c_in, kh, kw = w.shape
    (sh, sw), (ph, pw) = stride, padding
    grid_h = math.ceil((input_size[0] + 2 * ph) / sh)  # the circular grid, in polyphase units
    grid_w = math.ceil((input_size[1] + 2 * pw) / sw)
    qh, qw = math.ceil(kh / sh), math.ceil(kw / sw)
    w = torch.nn.functional.pad(w, (0, qw * sw - kw, 0, qh * sh - kh))
    # polyphase kernel: w_p[m] = w[s * m + p], the phases p joining the input channels
    w = w.reshape(c_out, c_in, qh, sh, qw, sw).permute(0, 1, 3, 5, 2, 4).reshape(c_out, c_in * sh * sw, qh, qw)
    spectrum = torch.fft.fft2(w, s=(grid_h, grid_w))  # (c_out, c_in * s^2, grid_h, grid_w)
    return float(torch.linalg.matrix_norm(spectrum.permute(2, 3, 0, 1), ord=2).max())


def _avgpool_bound(layer: nn.AvgPool2d) -> float:
    if layer.ceil_mode or layer.divisor_override is not None or (any(_pair(layer.padding))
                                                                 and not layer.count_include_pad):
        raise ValueError(f"AvgPool2d: a certified bound needs ceil_mode=False, no divisor_override and, with "
                         f"padding, count_include_pad=True; got {layer}")
    (kh, kw), (sh, sw) = _pair(layer.kernel_size), _pair(layer.stride or layer.kernel_size)
    # rows (outputs) sum to at most 1; a column (input) is in at most ceil(k/s) windows per axis
    return math.sqrt(math.ceil(kh / sh) * math.ceil(kw / sw) / (kh * kw))


def certified_norm(layer: nn.Module, input_shape: tuple[int, ...]) -> float:
    """A provable upper bound on the L2 operator norm of ``layer``'s linear part on one input
    of shape ``input_shape`` (no batch dimension). Raises ValueError for a layer or
    configuration without one (named in the message)."""
    with torch.no_grad():
        if isinstance(layer, SpectralLinear):
            return matrix_norm_bound(layer.normalised_weight())
        if isinstance(layer, nn.Linear):
            return matrix_norm_bound(layer.weight)
        if isinstance(layer, SpectralConv2d):
            return conv2d_norm_bound(layer.normalised_weight(), layer.input_size, layer.stride, layer.padding)
        if isinstance(layer, nn.Conv2d):
            if layer.groups != 1 or _pair(layer.dilation) != (1, 1) or layer.padding_mode != "zeros" \
                    or isinstance(layer.padding, str) and layer.padding != "valid":
                raise ValueError(f"{type(layer).__name__}: a certified bound needs groups=1, dilation=1 and numeric "
                                 f"zero padding, got {layer}")
            padding = (0, 0) if isinstance(layer.padding, str) else _pair(layer.padding)
            return conv2d_norm_bound(layer.weight, tuple(input_shape[-2:]), _pair(layer.stride), padding)
        if isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d)):
            if layer.running_var is None:
                raise ValueError(f"{type(layer).__name__} without running statistics: no certified bound")
            scale = (layer.running_var.double() + layer.eps).rsqrt()
            if layer.weight is not None:
                scale = scale * layer.weight.detach().double().abs()
            return float(scale.max())
        if isinstance(layer, nn.AvgPool2d):
            return _avgpool_bound(layer)
        if isinstance(layer, nn.AdaptiveAvgPool2d) and _pair(layer.output_size) == (1, 1):
            return 1.0 / math.sqrt(input_shape[-2] * input_shape[-1])
    raise ValueError(f"{type(layer).__name__}: no certified operator-norm bound (supported: "
                     f"{', '.join(t.__name__ for t in CERTIFIABLE)}; AdaptiveAvgPool2d to 1 x 1 only)")
