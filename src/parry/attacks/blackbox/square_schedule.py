"""Building blocks of the Square attack: the p schedule, square windows and the L2 bumps.

Andriushchenko, Croce, Flammarion & Hein, "Square Attack: a query-efficient black-box
adversarial attack via random search", ECCV 2020.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

#: Iterations (out of 10,000) after which p is halved: the paper's schedule, rescaled to the budget.
HALVING_POINTS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)


def p_schedule(p_init: float, iteration: int, budget: int) -> float:
    """The fraction of pixels changed at ``iteration`` (0-based) for a budget of ``budget`` queries.

    The paper's piecewise-constant schedule for 10,000 iterations (halve p after iterations
    10, 50, 200, 500, 1000, 2000, 4000, 6000 and 8000), rescaled to ``budget`` as in the
    authors' code: iteration i plays the role of ``int(i / budget * 10000)``.
    """
    it = int(iteration / budget * 10000)
    halvings = sum(it > point for point in HALVING_POINTS)
    return p_init / 2 ** halvings


def square_side(p: float, height: int, width: int, channels: int, minimum: int = 1) -> int:
    """Side of a square covering a fraction ``p`` of the pixels, in [minimum, min(height, width)]."""
    side = int(round(math.sqrt(p * height * width)))
    return max(min(side, height, width), min(minimum, height, width))


def random_corners(n: int, side: int, height: int, width: int, device: torch.device,
                   generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
    """Top-left corners (rows, cols), shape (n,) each, uniform over every position of a square."""
    rows = torch.randint(0, height - side + 1, (n,), device=device, generator=generator)
    cols = torch.randint(0, width - side + 1, (n,), device=device, generator=generator)
    return rows, cols


def window_index(rows: Tensor, cols: Tensor, side: int) -> tuple[Tensor, Tensor, Tensor]:
    """Advanced indices selecting each sample's square: ``t[idx]`` has shape (n, side, side, C)."""
    offsets = torch.arange(side, device=rows.device)
    n = rows.shape[0]
    sample = torch.arange(n, device=rows.device).view(n, 1, 1)
    r = (rows[:, None] + offsets).view(n, side, 1)
    c = (cols[:, None] + offsets).view(n, 1, side)
    return sample, r, c


def get_window(t: Tensor, index: tuple[Tensor, Tensor, Tensor]) -> Tensor:
    """Each sample's square of ``t`` (n, C, H, W), as (n, C, side, side)."""
    sample, r, c = index
    return t[sample, :, r, c].permute(0, 3, 1, 2)


def put_window(t: Tensor, index: tuple[Tensor, Tensor, Tensor], values: Tensor) -> Tensor:
    """A copy of ``t`` with each sample's square replaced by ``values`` (n, C, side, side)."""
    sample, r, c = index
    out = t.clone()
    out[sample, :, r, c] = values.permute(0, 2, 3, 1)
    return out


def window_mask(rows: Tensor, cols: Tensor, side: int, height: int, width: int) -> Tensor:
    """Boolean mask (n, 1, H, W) of each sample's square."""
    ar_h = torch.arange(height, device=rows.device)
    ar_w = torch.arange(width, device=rows.device)
    in_rows = (ar_h[None, :] >= rows[:, None]) & (ar_h[None, :] < rows[:, None] + side)
    in_cols = (ar_w[None, :] >= cols[:, None]) & (ar_w[None, :] < cols[:, None] + side)
    return (in_rows[:, :, None] & in_cols[:, None, :])[:, None]


def _rings(height: int, width: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    """Concentric rectangles around the centre (height // 2, width // 2): the cell at Chebyshev
    distance d gets ``sum_{k=d}^{K-1} 1 / (k + 1)^2`` with K = max(height, width) // 2 + 1."""
    if height == 0 or width == 0:
        return torch.zeros(height, width, device=device, dtype=dtype)
    rings = max(height // 2, width // 2) + 1
    weights = 1.0 / torch.arange(1, rings + 1, device=device, dtype=dtype) ** 2
    tail = weights.flip(0).cumsum(0).flip(0)               # tail[d] = sum_{k >= d} weights[k]
    dr = (torch.arange(height, device=device) - height // 2).abs()
    dc = (torch.arange(width, device=device) - width // 2).abs()
    return tail[torch.maximum(dr[:, None], dc[None, :])]


def bump(side: int, device: torch.device, dtype: torch.dtype, transpose: Tensor | None = None) -> Tensor:
    """The L2 attack's square update of unit L2 norm, (side, side): a positive bump of concentric
    rectangles on the top half and a negative one on the bottom half (transposed if asked)."""
    top = _rings(side // 2, side, device, dtype)
    bottom = _rings(side - side // 2, side, device, dtype)
    top = top / top.norm().clamp_min(1e-12)
    bottom = bottom / bottom.norm().clamp_min(1e-12)
    out = torch.cat((top, -bottom), dim=0)
    out = out / out.norm().clamp_min(1e-12)
    if transpose is not None and bool(transpose):
        out = out.t()
    return out


def bumps(n: int, side: int, device: torch.device, dtype: torch.dtype,
          generator: torch.Generator | None) -> Tensor:
    """(n, 1, side, side): the unit bump per sample, transposed with probability 1/2 each."""
    base = bump(side, device, dtype)
    flip = torch.rand(n, device=device, generator=generator) < 0.5
    return torch.where(flip.view(n, 1, 1), base.t().expand(n, side, side), base.expand(n, side, side))[:, None]
