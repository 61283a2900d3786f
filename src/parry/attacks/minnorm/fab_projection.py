"""Box-constrained projections onto a hyperplane, batched (the inner step of FAB).

For points ``t`` (M, D), hyperplanes ``{z : <w, z> = b}`` (w: (M, D), b: (M,)) and the box
``low <= z <= high``, return per row the step ``d`` of smallest Lp norm (p = inf, 2 or 1) with
``<w, t + d> = b`` and ``t + d`` in the box (Croce & Hein, "Minimally distorted Adversarial
Examples with a Fast Adaptive Boundary Attack", ICML 2020, Sec. 3.1). When the box does not
reach the hyperplane, ``d`` moves to the box corner that gets closest to it (every coordinate
with ``w_i != 0`` pushed to its bound), as in the authors' implementation.

All three problems reduce to "move every coordinate towards the hyperplane, up to its room":
with ``c = b - <w, t>`` the change of ``<w, d>`` needed and ``room_i`` the distance of ``t_i``
to the bound it moves towards (``high`` where ``sign(c) w_i > 0``, ``low`` otherwise),

- Linf: ``d_i = s_i min(lam, room_i)``; ``lam`` solves ``sum_i |w_i| min(lam, room_i) = |c|``;
- L2:   ``d_i = s_i |w_i| min(mu, room_i / |w_i|)`` (KKT: d is ``mu w`` clipped to the box);
        ``mu`` solves ``sum_i w_i^2 min(mu, room_i / |w_i|) = |c|``;
- L1:   saturate the coordinates in decreasing order of ``|w_i|`` (the cheapest per unit of
        ``<w, d>``) until ``|c|`` is reached, the last one partially;

with ``s_i = sign(c) sign(w_i)``. The first two share :func:`_water_level`, which finds the
level of a concave piecewise-linear function at its sorted breakpoints in one vectorised pass
(no per-row loop, no bisection).
"""

from __future__ import annotations

import torch
from torch import Tensor


def _water_level(weights: Tensor, breakpoints: Tensor, target: Tensor) -> Tensor:
    """Per row, the smallest ``lam >= 0`` with ``sum_i weights_i min(lam, breakpoints_i) = target``.

    ``weights`` and ``breakpoints`` are (M, D) and >= 0, ``target`` (M,) >= 0. Rows where the
    sum stays below ``target`` for every ``lam`` (the box cannot reach the hyperplane) get the
    largest finite float (finite, so that ``0 * lam`` stays 0).
    """
    bp, order = breakpoints.sort(dim=1)
    wt = weights.gather(1, order)
    saturated = (wt * bp).cumsum(dim=1)                     # sum over the first k+1 breakpoints
    # weight of the coordinates after position k (suffix sums: >= 0 by construction)
    rest = wt.flip(1).cumsum(dim=1).flip(1) - wt
    value_at_bp = saturated + bp * rest                     # the function at lam = bp_k
    k = (value_at_bp < target[:, None]).sum(dim=1)          # breakpoints strictly below the level
    dim = weights.shape[1]
    prev = (k - 1).clamp_min(0)[:, None]
    saturated_prev = torch.where(k > 0, saturated.gather(1, prev).squeeze(1), torch.zeros_like(target))
    rest_prev = torch.where(k > 0, rest.gather(1, prev).squeeze(1), wt.sum(dim=1))
    level = (target - saturated_prev).clamp_min(0) / rest_prev.clamp_min(1e-30)
    infeasible = (k >= dim) | (rest_prev <= 0)
    return torch.where(infeasible, torch.full_like(level, torch.finfo(level.dtype).max), level)


def project_hyperplane_box(t: Tensor, w: Tensor, b: Tensor, norm: str,
                           low: float = 0.0, high: float = 1.0) -> Tensor:
    """The minimal ``norm`` step from ``t`` onto ``{<w, z> = b}`` inside ``[low, high]^D`` (batched).

    Args:
        t: points (M, D) inside the box. w: normals (M, D). b: offsets (M,).
        norm: 'linf', 'l2' or 'l1'.
    Returns:
        d (M, D) with ``t + d`` in the box and on the hyperplane when the box reaches it.
    """
    c = b - (w * t).sum(dim=1)                                # change of <w, d> needed
    direction = torch.where(c >= 0, 1.0, -1.0).to(t.dtype)[:, None] * torch.sign(w)
    room = torch.where(direction > 0, high - t, t - low).clamp_min(0)
    room = torch.where(direction == 0, torch.zeros_like(room), room)
    need = c.abs()
    mag = w.abs()
    if norm == "linf":
        lam = _water_level(mag, room, need)
        step = torch.minimum(lam[:, None], room)
    elif norm == "l2":
        ratio = torch.where(mag > 0, room / mag.clamp_min(1e-30), torch.full_like(room, 1e30))
        mu = _water_level(mag * mag, ratio, need)
        step = torch.minimum(mu[:, None] * mag, room)
    elif norm == "l1":
        step = _l1_steps(mag, room, need)
    else:
        raise ValueError(f"norm: unknown norm {norm!r}")
    return direction * step


def _l1_steps(mag: Tensor, room: Tensor, need: Tensor) -> Tensor:
    """Magnitudes of the L1-minimal step: fill coordinates by decreasing ``|w_i|``."""
    mag_sorted, order = mag.sort(dim=1, descending=True)
    room_sorted = room.gather(1, order)
    capacity = (mag_sorted * room_sorted).cumsum(dim=1)     # <w, d> reached saturating the first k+1
    k = (capacity < need[:, None]).sum(dim=1)               # fully saturated coordinates
    dim = mag.shape[1]
    positions = torch.arange(dim, device=mag.device)[None, :]
    steps = torch.where(positions < k[:, None], room_sorted, torch.zeros_like(room_sorted))
    feasible = k < dim
    kk = k.clamp_max(dim - 1)[:, None]
    before = torch.where(k > 0, capacity.gather(1, (k - 1).clamp_min(0)[:, None]).squeeze(1),
                         torch.zeros_like(need))
    w_k = mag_sorted.gather(1, kk).squeeze(1)
    partial = torch.where(w_k > 0, (need - before).clamp_min(0) / w_k.clamp_min(1e-30), torch.zeros_like(need))
    partial = torch.minimum(partial, room_sorted.gather(1, kk).squeeze(1))
    steps = steps.scatter(1, kk, torch.where(feasible, partial, steps.gather(1, kk).squeeze(1))[:, None])
    return torch.empty_like(steps).scatter_(1, order, steps)
