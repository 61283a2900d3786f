"""Threat models: the set of allowed perturbations around an input.

A :class:`ThreatModel` is an Lp ball of radius ``eps`` (a float or one radius per
sample) intersected with the box ``bounds`` of valid inputs. Every attack's output
is projected onto it, so ``adv`` always satisfies the threat model.

The L1 projection follows Duchi et al., "Efficient projections onto the l1-ball
for learning in high dimensions", ICML 2008.
"""

from __future__ import annotations

from typing import Union

import torch
from torch import Tensor

NORMS = ("linf", "l2", "l1", "l0")
_ALIASES = {"linf": "linf", "inf": "linf", "l_inf": "linf", "l2": "l2", "2": "l2", "l1": "l1", "1": "l1",
            "l0": "l0", "0": "l0"}

Eps = Union[float, Tensor]


def canonical_norm(norm: object) -> str:
    """Return 'linf', 'l2', 'l1' or 'l0' for the accepted spellings of a norm."""
    if norm == float("inf"):
        return "linf"
    key = str(norm).lower()
    if isinstance(norm, bool) or key not in _ALIASES:
        raise ValueError(f"norm: unknown norm {norm!r}; expected one of {NORMS}")
    return _ALIASES[key]


def check_eps(eps: Eps, name: str = "eps", allow_inf: bool = False) -> Eps:
    """Validate a radius: a finite float >= 0 (inf too when ``allow_inf``), or a 1-D tensor of them."""
    if isinstance(eps, bool):
        raise TypeError(f"{name}: expected a number or a tensor, got a bool")
    if isinstance(eps, Tensor):
        if eps.ndim != 1 or not eps.is_floating_point():
            raise ValueError(f"{name}: a per-sample eps must be a 1-D float tensor, got "
                             f"shape {tuple(eps.shape)} and dtype {eps.dtype}")
        if not torch.isfinite(eps).all() or (eps < 0).any():
            raise ValueError(f"{name}: every per-sample eps must be finite and >= 0")
        return eps
    if not isinstance(eps, (int, float)):
        raise TypeError(f"{name}: expected a number or a tensor, got {type(eps).__name__}")
    eps = float(eps)
    if not eps >= 0 or (eps == float("inf") and not allow_inf):
        raise ValueError(f"{name}: must be finite and >= 0, got {eps}")
    return eps


def flat_norm(delta: Tensor, norm: str) -> Tensor:
    """Per-sample norm of ``delta`` (N, ...) as a tensor of shape (N,)."""
    flat = delta.flatten(1)
    if norm == "linf":
        return flat.abs().amax(dim=1)
    if norm == "l2":
        return flat.norm(p=2, dim=1)
    if norm == "l1":
        return flat.abs().sum(dim=1)
    if norm == "l0":
        return (flat != 0).sum(dim=1).to(delta.dtype)
    raise ValueError(f"norm: unknown norm {norm!r}")


def _per_sample(value: Tensor, like: Tensor) -> Tensor:
    """Reshape a (N,) tensor to broadcast against ``like`` (N, ...)."""
    return value.view(-1, *([1] * (like.ndim - 1)))


def project_l1_ball(delta: Tensor, eps: Tensor) -> Tensor:
    """Euclidean projection of each sample of ``delta`` onto the L1 ball of radius eps."""
    flat = delta.flatten(1)
    abs_flat = flat.abs()
    outside = abs_flat.sum(dim=1) > eps
    sorted_abs, _ = abs_flat.sort(dim=1, descending=True)
    cumsum = sorted_abs.cumsum(dim=1)
    ks = torch.arange(1, flat.shape[1] + 1, device=flat.device, dtype=flat.dtype)
    cond = sorted_abs * ks > (cumsum - eps[:, None])
    rho = cond.to(torch.int64).cumsum(dim=1).argmax(dim=1)  # last index where cond holds
    theta = (cumsum.gather(1, rho[:, None]).squeeze(1) - eps) / (rho + 1).to(flat.dtype)
    theta = torch.where(outside, theta.clamp_min(0), torch.zeros_like(theta))
    projected = flat.sign() * (abs_flat - theta[:, None]).clamp_min(0)
    return projected.view_as(delta)


def project_l0_ball(delta: Tensor, eps: Tensor) -> Tensor:
    """Keep the ``floor(eps)`` largest-magnitude coordinates of each sample, zero the rest."""
    flat = delta.flatten(1)
    k = eps.floor().clamp(0, flat.shape[1]).to(torch.int64)
    ranks = flat.abs().argsort(dim=1, descending=True).argsort(dim=1)
    return (flat * (ranks < k[:, None])).view_as(delta)


class ThreatModel:
    """An Lp ball of radius ``eps`` around each input, inside ``bounds``.

    Args:
        norm: 'linf', 'l2', 'l1' or 'l0' (also 'inf', 2, 1, 0, float('inf')); for L0, eps
            counts the coordinates allowed to change.
        eps: radius in input (pixel) space; a float or a 1-D tensor with one radius per sample;
            ``float('inf')`` leaves only the box (minimum-norm attacks).
        bounds: (low, high) of valid inputs, default (0, 1).
    """

    def __init__(self, norm: object, eps: Eps, bounds: tuple[float, float] = (0.0, 1.0)) -> None:
        self.norm = canonical_norm(norm)
        self.eps = check_eps(eps, allow_inf=True)
        low, high = (float(b) for b in bounds)
        if not low < high:
            raise ValueError(f"bounds: low must be < high, got {bounds}")
        self.bounds = (low, high)

    def __repr__(self) -> str:
        eps = self.eps if isinstance(self.eps, float) else f"tensor[{self.eps.numel()}]"
        return f"ThreatModel(norm={self.norm!r}, eps={eps}, bounds={self.bounds})"

    def describe(self) -> dict:
        """JSON-friendly summary (per-sample eps summarised by its range)."""
        eps = self.eps if isinstance(self.eps, float) else [float(self.eps.min()), float(self.eps.max())]
        return {"norm": self.norm, "eps": eps, "bounds": list(self.bounds)}

    def eps_tensor(self, x: Tensor) -> Tensor:
        """The radius of every sample of ``x`` as a (N,) tensor on x's device and dtype."""
        if isinstance(self.eps, Tensor):
            if self.eps.shape[0] != x.shape[0]:
                raise ValueError(f"eps: {self.eps.shape[0]} per-sample radii for {x.shape[0]} inputs")
            return self.eps.to(device=x.device, dtype=x.dtype)
        return torch.full((x.shape[0],), self.eps, device=x.device, dtype=x.dtype)

    def subset(self, index: Tensor) -> "ThreatModel":
        """The same threat model restricted to the samples ``index`` (for per-sample eps)."""
        if isinstance(self.eps, float):
            return self
        return ThreatModel(self.norm, self.eps[index.to(self.eps.device)], self.bounds)

    def clip(self, x: Tensor) -> Tensor:
        """Clamp to the input bounds."""
        return x.clamp(*self.bounds)

    def project(self, x_adv: Tensor, x: Tensor) -> Tensor:
        """Project ``x_adv`` onto the eps-ball around ``x`` and then into the bounds.

        Clipping to the box after the ball projection only shrinks |delta| coordinate-wise,
        so the result stays inside the ball for every norm.
        """
        delta = x_adv - x
        eps = self.eps_tensor(x)
        if self.norm == "linf":
            e = _per_sample(eps, x)
            delta = torch.maximum(torch.minimum(delta, e), -e)
        elif self.norm == "l2":
            norms = flat_norm(delta, "l2")
            factor = torch.where(norms > eps, eps / norms.clamp_min(1e-12), torch.ones_like(norms))
            delta = delta * _per_sample(factor, x)
        elif self.norm == "l1":
            delta = project_l1_ball(delta, eps)
        else:
            delta = project_l0_ball(delta, eps)
        return self.clip(x + delta)

    def random_init(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """A point drawn uniformly from the eps-ball around ``x``, clipped to the bounds."""
        eps = self.eps_tensor(x)
        if not bool(torch.isfinite(eps).all()):
            raise ValueError("eps: a random start needs a finite radius")
        shape, dim = x.shape, x[0].numel()
        kw = {"device": x.device, "dtype": x.dtype, "generator": generator}
        if self.norm == "linf":
            delta = (torch.rand(shape, **kw) * 2 - 1) * _per_sample(eps, x)
        elif self.norm == "l2":
            direction = torch.randn(shape, **kw)
            direction = direction / _per_sample(flat_norm(direction, "l2").clamp_min(1e-12), x)
            radius = torch.rand(shape[0], **kw) ** (1.0 / dim) * eps
            delta = direction * _per_sample(radius, x)
        elif self.norm == "l0":
            support = project_l0_ball(torch.rand(shape, **kw) + 1, eps) != 0  # floor(eps) random coordinates
            delta = (torch.rand(shape, **kw) * 2 - 1) * support
        else:
            # Uniform in the L1 ball: normalised exponentials with a slack coordinate, random signs.
            exp = -torch.log(torch.rand((shape[0], dim + 1), **kw).clamp_min(1e-20))
            magnitude = (exp / exp.sum(dim=1, keepdim=True))[:, :dim]
            signs = torch.randint(0, 2, (shape[0], dim), device=x.device, generator=generator) * 2 - 1
            delta = (magnitude * signs.to(x.dtype)).view(shape) * _per_sample(eps, x)
        return self.clip(x + delta)

    def distance(self, x_adv: Tensor, x: Tensor) -> Tensor:
        """Per-sample distance in this threat model's norm, shape (N,)."""
        return flat_norm(x_adv - x, self.norm)

    def contains(self, x_adv: Tensor, x: Tensor, tol: float = 1e-5) -> Tensor:
        """Per-sample mask: inside the ball (up to ``tol`` relative slack) and the bounds."""
        eps = self.eps_tensor(x)
        in_ball = self.distance(x_adv, x) <= eps * (1 + tol) + tol
        low, high = self.bounds
        flat = x_adv.flatten(1)
        in_box = (flat >= low).all(dim=1) & (flat <= high).all(dim=1)
        return in_ball & in_box
