"""Jacobian regularisation (Hoffman, Roberts & Yaida, "Robust Learning with Jacobian
Regularization", arXiv:1908.02729, 2019):

    CE(f(x), y) + lam * E_i ||J(x_i)||_F^2,    J(x_i) = d f(x_i) / d x_i  (C x D logits Jacobian)

The Frobenius norm is estimated by random projections, as in the paper (Algorithm 1): for
``v`` uniform on the unit sphere of R^C, ``C * E_v ||v^T J||^2 = ||J||_F^2``, and each
``v^T J`` costs one backward pass (``create_graph=True``, so the penalty is differentiable
in the parameters). ``nproj`` projections per sample are averaged; the paper finds one
enough. (The paper writes the weight as ``lambda_JR / 2``; here ``lam`` multiplies the
squared norm directly.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from parry.classifier import Classifier
from parry.defenses.training.objective import Objective, Stats, draw_seed
from parry.validation import check_nonneg_float, check_positive_int


def random_unit_vectors(n: int, c: int, like: Tensor, generator: torch.Generator | None) -> Tensor:
    """``n`` vectors uniform on the unit sphere of R^c (dtype and device of ``like``)."""
    if generator is not None and generator.device != like.device:
        generator = torch.Generator(device=like.device).manual_seed(draw_seed(generator))
    v = torch.randn((n, c), generator=generator, device=like.device, dtype=like.dtype)
    return v / v.norm(dim=1, keepdim=True).clamp_min(1e-12)


def jacobian_frobenius_sq(logits: Tensor, x: Tensor, nproj: int, generator: torch.Generator | None,
                          create_graph: bool = True) -> Tensor:
    """The batch mean of the estimated ``||d logits_i / d x_i||_F^2`` (``x`` must require grad
    and ``logits`` come from it)."""
    n, c = logits.shape
    total = logits.new_zeros(())
    for k in range(nproj):
        v = random_unit_vectors(n, c, logits, generator)
        vjp, = torch.autograd.grad((logits * v).sum(), x, create_graph=create_graph,
                                   retain_graph=create_graph or k < nproj - 1)
        total = total + vjp.pow(2).flatten(1).sum(dim=1).mean()
    return c * total / nproj


class JacobianRegularization(Objective):
    """Cross-entropy plus ``lam`` times the random-projection estimate of ``||J||_F^2``.

    Args:
        lam: weight of the penalty (finite, >= 0; 0 is standard training; the paper's
            ``lambda_JR`` is ``2 * lam``). Tune it on held-out robust accuracy.
        nproj: random projections per sample (>= 1; default 1, as in the paper).
    """

    name = "jacobian-reg"

    def __init__(self, lam: float = 0.01, *, nproj: int = 1) -> None:
        self.lam = float(check_nonneg_float(lam, "lam"))
        self.nproj = check_positive_int(nproj, "nproj")

    def loss(self, model: Classifier, x: Tensor, y: Tensor, *,
             generator: torch.Generator | None = None) -> tuple[Tensor, Stats]:
        x = x.detach().requires_grad_(True)
        logits = model(x)
        ce = F.cross_entropy(logits, y)
        penalty = jacobian_frobenius_sq(logits, x, self.nproj, generator)
        loss = ce + self.lam * penalty
        stats = {"loss": loss.detach(), "ce": ce.detach(), "jacobian_sq": penalty.detach(),
                 "accuracy": (logits.detach().argmax(dim=1) == y).float().mean()}
        return loss, stats
