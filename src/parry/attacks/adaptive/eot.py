"""Expectation over Transformation (EOT).

Athalye et al., "Synthesizing Robust Adversarial Examples", ICML 2018, and "Obfuscated
Gradients Give a False Sense of Security", ICML 2018: against a randomised model (or
randomised preprocessing), attack the expectation over its randomness. :class:`EOT` wraps
a model as a module whose output is the mean of ``samples`` log-probability vectors, each
from one draw of the model's randomness (and of ``transform``, if given). Its gradient is
the mean of the per-draw gradients of the log-probabilities, so every gradient attack
becomes an EOT attack by attacking the wrapper; success is then judged on the expected
(geometric-mean) prediction.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...classifier import Classifier
from ...validation import check_positive_int


class EOT(nn.Module):
    """Average ``samples`` stochastic passes of ``model`` (log-softmax outputs).

    Args:
        model: the randomised model or Classifier (left in the mode the caller sets; for a
            model whose randomness lives in train-mode layers such as dropout, wrap it so
            the randomness is active in eval mode).
        samples: draws per forward pass.
        transform: optional random, differentiable transformation applied to each draw's input.
        batched: run all draws in one forward pass of ``samples * N`` inputs. Faster, but
            right only when the model draws its randomness per sample (e.g. input noise); the
            default loop is right for any randomness, including one draw per call.
    """

    def __init__(self, model: nn.Module, samples: int = 16,
                 transform: Callable[[Tensor], Tensor] | None = None, batched: bool = False) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
        if transform is not None and not callable(transform):
            raise TypeError("transform: must be callable or None")
        self.model = model
        self.samples = check_positive_int(samples, "samples")
        self.transform = transform
        self.batched = bool(batched)

    def _draw(self, x: Tensor) -> Tensor:
        return F.log_softmax(self.model(self.transform(x) if self.transform else x).float(), dim=1)

    def forward(self, x: Tensor) -> Tensor:
        if self.batched:
            n = x.shape[0]
            logp = self._draw(x.repeat(self.samples, *([1] * (x.ndim - 1))))
            return logp.view(self.samples, n, -1).mean(dim=0)
        return torch.stack([self._draw(x) for _ in range(self.samples)]).mean(dim=0)


def eot_classifier(model: nn.Module, samples: int = 16, transform: Callable[[Tensor], Tensor] | None = None,
                   batched: bool = False) -> Classifier:
    """:class:`EOT` wrapped as a Classifier with the bounds (and shape) of ``model`` when it is one."""
    bounds = model.bounds if isinstance(model, Classifier) else (0.0, 1.0)
    shape = model.input_shape if isinstance(model, Classifier) else None
    classes = model.num_classes if isinstance(model, Classifier) else None
    return Classifier(EOT(model, samples, transform, batched), num_classes=classes, bounds=bounds, input_shape=shape)
