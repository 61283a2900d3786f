"""Shared pieces of the minimum-norm attacks: the success tolerance and best-so-far tracking.

A minimum-norm attack keeps, per sample, the smallest adversarial perturbation it has
seen; samples for which nothing was found come back as ``x`` itself (so the base's
success check is False there).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ...threat import flat_norm


#: A candidate counts as adversarial only when its margin (best other logit minus the true
#: logit, or target logit minus the best other) exceeds this many logit units. Float32 logits
#: of the same input differ by ~1e-6 between batch compositions, and the Attack base re-checks
#: success on the whole batch: a point left exactly on the boundary (DeepFool does land on
#: ties) would otherwise be "found" by the attack and not successful in the result.
ADV_TOL = 1e-5


def margin_adversarial(margin: Tensor, confidence: float = 0.0) -> Tensor:
    """Per sample: the margin (``losses.margin_loss``, > 0 means adversarial) clears the tolerance."""
    return margin > max(confidence, ADV_TOL)


def per_sample(value: Tensor, like: Tensor) -> Tensor:
    """Reshape a (N,) tensor to broadcast against ``like`` (N, ...)."""
    return value.view(-1, *([1] * (like.ndim - 1)))


class BestTracker:
    """Per sample, the smallest adversarial candidate seen so far (in one norm).

    ``update`` takes candidates for every sample with their adversarial mask; ``result()``
    returns the best candidates, and ``x`` itself where none was found. Everything stays on
    the device: no host synchronisation per update.
    """

    def __init__(self, x: Tensor, norm: str) -> None:
        self.x = x
        self.norm = norm
        self.adv = x.clone()
        self.norms = torch.full((x.shape[0],), float("inf"), device=x.device, dtype=x.dtype)

    @property
    def found(self) -> Tensor:
        return torch.isfinite(self.norms)

    def update(self, candidate: Tensor, is_adv: Tensor, norms: Tensor | None = None) -> None:
        candidate = candidate.detach()
        if norms is None:
            norms = flat_norm(candidate - self.x, self.norm)
        better = is_adv & (norms < self.norms)
        self.norms = torch.where(better, norms.to(self.norms.dtype), self.norms)
        self.adv = torch.where(per_sample(better, candidate), candidate.to(self.adv.dtype), self.adv)

    def result(self) -> Tensor:
        return self.adv
