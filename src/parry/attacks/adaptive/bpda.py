"""Backward Pass Differentiable Approximation (BPDA).

Athalye et al., "Obfuscated Gradients Give a False Sense of Security", ICML 2018: a
non-differentiable (or gradient-shattering) layer f is kept in the forward pass while the
backward pass uses the gradient of a differentiable approximation g (by default the
identity, g(x) = x, the straight-through estimator): ``g(x) + (f(x) - g(x)).detach()``.
Insert :class:`BPDA` where the layer sits (e.g. input quantisation, JPEG, denoisers) and
attack the model with any gradient attack.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from ...classifier import Classifier


class BPDA(nn.Module):
    """Forward ``layer(x)``, backward through ``approximation`` (identity by default)."""

    def __init__(self, layer: Callable[[Tensor], Tensor],
                 approximation: Callable[[Tensor], Tensor] | None = None) -> None:
        super().__init__()
        if not callable(layer):
            raise TypeError("layer: must be callable (a module or a function)")
        if approximation is not None and not callable(approximation):
            raise TypeError("approximation: must be callable or None")
        self.layer = layer
        self.approximation = approximation

    def forward(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            exact = self.layer(x)
        if exact.shape != x.shape and self.approximation is None:
            raise ValueError(f"layer: output shape {tuple(exact.shape)} differs from the input's "
                             f"{tuple(x.shape)}; give an approximation with the layer's output shape")
        surrogate = self.approximation(x) if self.approximation is not None else x
        return surrogate + (exact - surrogate).detach()


def bpda_classifier(preprocess: Callable[[Tensor], Tensor], model: nn.Module,
                    approximation: Callable[[Tensor], Tensor] | None = None) -> Classifier:
    """``model(preprocess(x))`` with BPDA through ``preprocess``, as a Classifier.

    When ``model`` is a Classifier its bounds, normalisation and shape are kept.
    """
    wrapped = nn.Sequential(BPDA(preprocess, approximation), model)
    if isinstance(model, Classifier):
        return Classifier(wrapped, num_classes=model.num_classes, bounds=model.bounds,
                          input_shape=model.input_shape)
    return Classifier(wrapped)
