"""APGD's fixed ingredients: the checkpoint schedule and the L1 pieces.

Checkpoints (Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble
of diverse parameter-free attacks", ICML 2020, Sec. 3.2): ``p_0 = 0``, ``p_1 = 0.22``,
``p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06)`` and ``w_j = ceil(p_j * N_iter)``.
The fractions are kept in exact hundredths, so ``w_j`` does not suffer from rounding
(0.57 * 100 is 57, not 57.000000000000001 rounded up to 58).

APGD-L1 (Croce & Hein, "Mind the box: l1-APGD for sparse adversarial attacks on image
classifiers", ICML 2021): the exact projection onto the intersection of the L1 ball and the
input box, and the sparse step on the top-k coordinates of the gradient.
"""

from __future__ import annotations

import torch
from torch import Tensor

_FIRST, _SHRINK, _MIN = 22, 3, 6  # p_1, the shrink of the interval and its floor, in hundredths


def checkpoint_fractions() -> list[float]:
    """The paper's ``p_j`` in [0, 1]: 0, 0.22, 0.41, 0.57, 0.70, 0.80, 0.87, 0.93, 0.99."""
    return [h / 100 for h in _hundredths()]


def _hundredths() -> list[int]:
    p = [0, _FIRST]
    while True:
        nxt = p[-1] + max(p[-1] - p[-2] - _SHRINK, _MIN)
        if nxt > 100:
            return p
        p.append(nxt)


def checkpoints(steps: int) -> list[int]:
    """The checkpoint iterations ``w_0 = 0 < w_1 < ...`` of APGD with ``steps`` iterations.

    For 100 steps: [0, 22, 41, 57, 70, 80, 87, 93, 99]. Duplicates (few steps) are dropped.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps: expected an int >= 1, got {steps!r}")
    out: list[int] = []
    for h in _hundredths():
        w = -(-h * steps // 100)  # ceil(h * steps / 100) in integers
        if not out or w > out[-1]:
            out.append(w)
    return out


def l1_checkpoints(steps: int) -> list[int]:
    """APGD-L1 adapts sparsity and step size every ``max(floor(0.04 * steps), 1)`` iterations
    (as in the authors' code for "Mind the box")."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps: expected an int >= 1, got {steps!r}")
    every = max(4 * steps // 100, 1)
    return list(range(0, steps + 1, every))


def project_l1_box(delta: Tensor, x: Tensor, eps: Tensor, bounds: tuple[float, float]) -> Tensor:
    """Euclidean projection of ``delta`` onto ``{d : ||d||_1 <= eps, low <= x + d <= high}``.

    Per sample, the solution is ``sign(delta_i) * clip(|delta_i| - lam, 0, cap_i)`` with
    ``cap_i`` the room to the box in the direction of ``delta_i`` and ``lam >= 0`` the smallest
    shift that brings the L1 norm down to eps. The norm is piecewise linear in ``lam`` with
    breakpoints ``|delta_i| - cap_i`` and ``|delta_i|``; sorting them locates ``lam`` exactly.
    """
    low, high = bounds
    d, origin = delta.flatten(1), x.flatten(1)
    size = d.abs()
    cap = torch.where(d > 0, high - origin, origin - low).clamp_min(0)
    clipped = torch.minimum(size, cap)
    total = clipped.sum(dim=1)
    outside = total > eps
    # Breakpoints: a coordinate starts shrinking at |d| - cap and is zero from |d| on.
    marks = torch.cat([(size - cap).clamp_min(0), size], dim=1)
    change = torch.cat([torch.ones_like(size), -torch.ones_like(size)], dim=1)
    marks, order = marks.sort(dim=1)
    shrinking = change.gather(1, order).cumsum(dim=1)  # coordinates shrinking right after each mark
    drop = (shrinking[:, :-1] * marks.diff(dim=1)).cumsum(dim=1)
    norm_at = total[:, None] - torch.cat([torch.zeros_like(drop[:, :1]), drop], dim=1)
    after = (norm_at > eps[:, None]).sum(dim=1).clamp(1, marks.shape[1] - 1)  # first mark at or below eps
    before = (after - 1)[:, None]
    lam = marks.gather(1, before).squeeze(1) + (norm_at.gather(1, before).squeeze(1) - eps) / (
        shrinking.gather(1, before).squeeze(1).clamp_min(1))
    lam = torch.where(outside, torch.minimum(lam, marks.gather(1, after[:, None]).squeeze(1)),
                      torch.zeros_like(lam))
    projected = d.sign() * torch.minimum((size - lam[:, None]).clamp_min(0), cap)
    return projected.view_as(delta)


def l1_sparse_step(grad: Tensor, fraction: Tensor) -> Tensor:
    """Sign of the gradient on its largest ``fraction`` (per sample) of coordinates, unit L1 norm.

    The threshold is the ``floor((1 - fraction) * d)``-th smallest ``|grad|`` (ties included),
    as in APGD-L1.
    """
    g = grad.flatten(1)
    size = g.abs()
    dim = g.shape[1]
    rank = ((1 - fraction) * dim).clamp(0, dim - 1).long()
    threshold = size.sort(dim=1).values.gather(1, rank[:, None])
    direction = g.sign() * (size >= threshold)
    direction = direction / (direction.abs().sum(dim=1, keepdim=True) + 1e-10)
    return direction.view_as(grad)
