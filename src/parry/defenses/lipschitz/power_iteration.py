"""Power iteration for the L2 operator norm of a linear map given only as a function.

For a linear ``A`` the iteration ``v <- A^T A v / ||A^T A v||`` converges to the top right
singular vector, and ``||A v||`` to the largest singular value ``sigma(A)`` (from below).
``A^T`` is never formed: ``A^T A v`` is the input gradient of ``||A v||^2 / 2``, so any
affine layer (a convolution with its own stride and padding at a given input size
included) is handled by its forward pass alone. This is the estimator of Miyato et al.,
"Spectral Normalization for Generative Adversarial Networks", ICLR 2018, run on the
operator itself rather than on the reshaped kernel (which can misjudge a convolution's
norm in either direction).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from parry.validation import check_nonneg_float, check_positive_int


def power_iteration(linear: Callable[[Tensor], Tensor], shape: tuple[int, ...], *, iterations: int = 100,
                    tol: float = 1e-6, v0: Tensor | None = None, generator: torch.Generator | None = None,
                    device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> tuple[float, Tensor]:
    """Largest singular value of the linear map ``linear`` on inputs of ``shape`` (batch included).

    ``linear`` must be linear (for an affine layer pass ``lambda v: f(v) - f(zeros)``).
    Stops after ``iterations`` or when the estimate changes by less than ``tol`` (relative).
    Returns ``(sigma, v)`` with ``v`` the unit-norm top right singular vector estimate. The
    estimate never exceeds the true norm; add a margin for a guaranteed upper bound.
    """
    check_positive_int(iterations, "iterations")
    check_nonneg_float(tol, "tol")
    if v0 is not None:
        v = v0.detach().to(device=device, dtype=dtype).reshape(shape).clone()
    else:
        v = torch.randn(shape, generator=generator, dtype=dtype).to(device)
    v = v / v.norm().clamp_min(1e-12)
    sigma = 0.0
    for _ in range(iterations):
        with torch.enable_grad():
            v = v.detach().requires_grad_(True)
            out = linear(v)
            (grad,) = torch.autograd.grad(0.5 * out.pow(2).sum(), v)
        norm = grad.norm()
        if float(norm) == 0.0:  # the zero map (or v in its kernel): the norm is 0 up to rounding
            return 0.0, v.detach()
        v = (grad / norm).detach()
        previous, sigma = sigma, float(norm.sqrt())  # ||A^T A v|| -> sigma^2
        if previous > 0 and abs(sigma - previous) <= tol * sigma:
            break
    with torch.no_grad():
        sigma = float(linear(v).norm())
    return sigma, v
