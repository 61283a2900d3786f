"""A global L2 Lipschitz upper bound of a sequential network, one layer at a time.

For ``f = f_n o ... o f_1``, ``Lip(f) <= prod_i Lip(f_i)`` (Szegedy et al. 2014; the bound
behind the certificates of Tsuzuku, Sato & Sugiyama, "Lipschitz-margin training", NeurIPS
2018). Affine layers (Linear, convolutions with their own stride and padding, average
pooling, BatchNorm in eval mode, the spectral layers of this package) contribute the
operator norm of their linear part, found by power iteration on the layer itself at the
input size it receives; activations known to be 1-Lipschitz (ReLU, GroupSort, tanh, ...)
contribute 1; a Classifier's ``(x - mean) / std`` contributes ``1 / min |std|``. Anything
else is refused, since its constant is unknown.

Two methods give each affine layer's norm:

- ``'certified'`` (the default, and what certificates use): provable upper bounds
  (:mod:`parry.defenses.lipschitz.certified_norms`: SVD for Linear, the exact norm of a
  Conv2d's matrix up to 2**25 entries and the polyphase Fourier bound above, exact for
  BatchNorm and average pooling), so the product is a bound.
- ``'power'``: power iteration on the layer itself at the input size it receives, which
  converges to each norm from below; every estimate is raised by the relative ``slack``
  (default 1e-3) before the product is taken. This margin is a safeguard, not a proof: with
  the default 500 iterations the estimates agree with exact SVDs to about 1e-5, but a layer
  whose top singular values are extremely close can converge more slowly. It is the tighter
  figure for large strided or zero-padded convolutions, whose Fourier bound can exceed their
  norm by a few per cent, and it covers the layers without a certified bound (Conv1d/3d,
  transposed convolutions, 1-D pooling).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from parry.classifier import Classifier
from parry.defenses.lipschitz.certified_norms import certified_norm
from parry.defenses.lipschitz.groupsort import GroupSort
from parry.defenses.lipschitz.layers import SpectralConv2d, SpectralLinear
from parry.defenses.lipschitz.power_iteration import power_iteration
from parry.validation import check_nonneg_float, check_positive_int

#: Layers whose linear part is measured by power iteration.
AFFINE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d,
          nn.ConvTranspose2d, nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.BatchNorm1d, nn.BatchNorm2d,
          SpectralLinear, SpectralConv2d)
#: Layers that are 1-Lipschitz in L2 whatever their input (shape changes and activations).
ONE_LIPSCHITZ = (nn.Identity, nn.Flatten, nn.Unflatten, nn.Dropout, nn.ReLU, nn.ReLU6, nn.Tanh, nn.Sigmoid,
                 nn.Hardtanh, nn.Softsign, nn.Softplus, GroupSort)


def _one_lipschitz(layer: nn.Module) -> bool:
    if isinstance(layer, ONE_LIPSCHITZ):
        return True
    if isinstance(layer, nn.LeakyReLU):
        return abs(layer.negative_slope) <= 1.0
    if isinstance(layer, nn.ELU):
        return 0.0 <= layer.alpha <= 1.0
    if isinstance(layer, nn.MaxPool2d):  # a max over disjoint windows; overlapping windows count twice
        k, s, d = (layer.kernel_size, layer.stride, layer.dilation)
        ks, ss = (k, k) if isinstance(k, int) else k, (s, s) if isinstance(s, int) else s
        return d in (1, (1, 1)) and all(si >= ki for ki, si in zip(ks, ss))
    return False


def _flatten(model: nn.Module, prefix: str) -> list[tuple[str, nn.Module]]:
    if isinstance(model, nn.Sequential):
        if type(model).forward is not nn.Sequential.forward:
            raise ValueError(f"model: {prefix or 'the model'} ({type(model).__name__}) overrides "
                             "Sequential.forward, so its composition is unknown; cannot bound it")
        layers: list[tuple[str, nn.Module]] = []
        for name, child in model.named_children():
            layers += _flatten(child, f"{prefix}.{name}" if prefix else name)
        return layers
    return [(prefix or type(model).__name__, model)]


def _layers(model: nn.Module) -> tuple[float, list[tuple[str, nn.Module]]]:
    """(normalisation factor, layers in order) of a Sequential or a Classifier around one."""
    factor = 1.0
    if isinstance(model, Classifier):
        if model.std is not None:
            factor = float(1.0 / model.std.abs().min())
        model = model.model
    if not isinstance(model, nn.Sequential):
        raise ValueError(f"model: only an nn.Sequential (nested, or inside a Classifier) can be bounded, since the "
                         f"composition of any other forward pass is unknown; got {type(model).__name__}")
    return factor, _flatten(model, "")


METHODS = ("certified", "power")


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    return method


def layer_norms(model: nn.Module, input_shape: Sequence[int] | None = None, *, method: str = "certified",
                iterations: int = 500, tol: float = 1e-7, seed: int = 0) -> list[tuple[str, float]]:
    """Per layer, ``(name, L2 Lipschitz constant)``: a provable upper bound (``method=
    'certified'``) or a power-iteration estimate without slack (``'power'``; ``iterations``,
    ``tol`` and ``seed`` apply to it); the first entry is the Classifier's normalisation when
    there is one.

    ``input_shape`` is one input's shape, e.g. (1, 28, 28); a Classifier's own is the default.
    Raises ValueError for a layer whose constant is unknown (named in the message).
    """
    _check_method(method)
    check_positive_int(iterations, "iterations")
    check_nonneg_float(tol, "tol")
    factor, layers = _layers(model)
    if input_shape is None:
        input_shape = model.input_shape if isinstance(model, Classifier) else None
        if input_shape is None:
            raise ValueError("input_shape: required (one input's shape, e.g. (1, 28, 28)) unless the model is a "
                             "Classifier that declares it")
    shape = tuple(int(s) for s in input_shape)
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"input_shape: expected positive sizes, got {tuple(input_shape)}")
    for name, layer in layers:
        if not (_one_lipschitz(layer) or isinstance(layer, AFFINE)):
            raise ValueError(f"model: cannot bound layer {name!r} ({type(layer).__name__}): its L2 Lipschitz "
                             f"constant is unknown (supported: affine layers {[t.__name__ for t in AFFINE]}, "
                             f"1-Lipschitz activations, non-overlapping max pooling)")
    param = next(iter(model.parameters()), None)
    device, dtype = (param.device, param.dtype) if param is not None else (torch.device("cpu"), torch.float32)
    generator = torch.Generator().manual_seed(seed)
    norms = [("normalisation", factor)] if isinstance(model, Classifier) and model.std is not None else []
    modes = [(m, m.training) for m in model.modules()]
    model.eval()  # BatchNorm uses its running statistics, spectral layers stop iterating
    try:
        x = torch.zeros((1, *shape), device=device, dtype=dtype)
        for name, layer in layers:
            if isinstance(layer, AFFINE) and method == "certified":
                try:
                    norms.append((name, certified_norm(layer, tuple(x.shape[1:]))))
                except ValueError as exc:
                    raise ValueError(f"model: layer {name!r}: {exc}; method='power' estimates it instead") from exc
            elif isinstance(layer, AFFINE):
                with torch.no_grad():
                    offset = layer(torch.zeros_like(x))  # the bias part, removed to leave the linear map
                sigma, _ = power_iteration(lambda v, f=layer, b=offset: f(v) - b, tuple(x.shape),
                                           iterations=iterations, tol=tol, generator=generator,
                                           device=device, dtype=dtype)
                norms.append((name, sigma))
            else:
                norms.append((name, 1.0))
            with torch.no_grad():
                x = layer(x)
    finally:
        for m, training in modes:
            m.train(training)
    return norms


def lipschitz_bound(model: nn.Module, input_shape: Sequence[int] | None = None, *, method: str = "certified",
                    iterations: int = 500, tol: float = 1e-7, slack: float = 1e-3, seed: int = 0) -> float:
    """An upper bound on ``sup ||f(x) - f(x')||_2 / ||x - x'||_2`` of the logits map.

    The product of :func:`layer_norms`: provable with ``method='certified'`` (the default);
    with ``'power'``, each affine layer's estimate raised by ``slack`` (see the module
    docstring). ``model``: an ``nn.Sequential`` or a :class:`~parry.classifier.Classifier`
    around one.
    """
    slack = check_nonneg_float(slack, "slack") if _check_method(method) == "power" else 0.0
    exact = {"normalisation"} | {name for name, layer in _layers(model)[1] if not isinstance(layer, AFFINE)}
    bound = 1.0
    for name, norm in layer_norms(model, input_shape, method=method, iterations=iterations, tol=tol, seed=seed):
        bound *= norm if name in exact else norm * (1.0 + slack)
    return bound
