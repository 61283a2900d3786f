"""Steepest-ascent directions of unit norm for each threat model.

- Linf: ``sign(g)``; L2: ``g / ||g||_2``.
- L1: the sparse step of Tramer & Boneh ("Adversarial Training and Robustness for
  Multiple Perturbations", NeurIPS 2019, SLIDE), with the coordinates that would push
  against the box bounds masked out as in Croce & Hein (ICML 2021): the sign of the
  gradient on its top-(100 - q) % coordinates, scaled to unit L1 norm.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _per_sample(v: Tensor, like: Tensor) -> Tensor:
    return v.view(-1, *([1] * (like.ndim - 1)))


def linf_direction(grad: Tensor) -> Tensor:
    return grad.sign()


def l2_direction(grad: Tensor) -> Tensor:
    norms = grad.flatten(1).norm(p=2, dim=1).clamp_min(1e-12)
    return grad / _per_sample(norms, grad)


def l1_sparse_direction(grad: Tensor, x_adv: Tensor, bounds: tuple[float, float],
                        sparsity: float = 0.99) -> Tensor:
    """Sign of the gradient on its largest ``1 - sparsity`` fraction of usable coordinates."""
    low, high = bounds
    blocked = ((x_adv <= low) & (grad < 0)) | ((x_adv >= high) & (grad > 0))
    magnitude = grad.abs().masked_fill(blocked, 0).flatten(1)
    k = max(1, int(round((1.0 - sparsity) * magnitude.shape[1])))
    threshold = magnitude.topk(k, dim=1).values[:, -1:]
    mask = (magnitude >= threshold) & (magnitude > 0)
    direction = grad.sign().flatten(1) * mask
    counts = mask.sum(dim=1, keepdim=True).clamp_min(1)
    return (direction / counts).view_as(grad)


def direction(norm: str, grad: Tensor, x_adv: Tensor, bounds: tuple[float, float],
              l1_sparsity: float = 0.99) -> Tensor:
    """Unit-norm steepest-ascent direction of ``grad`` in the given norm."""
    if norm == "linf":
        return linf_direction(grad)
    if norm == "l2":
        return l2_direction(grad)
    return l1_sparse_direction(grad, x_adv, bounds, l1_sparsity)
