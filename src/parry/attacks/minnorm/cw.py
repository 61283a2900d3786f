"""Carlini & Wagner L2 attack.

Carlini & Wagner, "Towards Evaluating the Robustness of Neural Networks", IEEE S&P 2017.
The box constraint disappears through the change of variables ``x' = tanh(w) * s + m``
(``m``, ``s`` the centre and half-width of the input box); Adam (step ``stepsize``)
minimises ``||x' - x||_2^2 + c * f(x')`` with the margin
``f = max(Z_y - max_{j != y} Z_j + kappa, 0)`` (targeted: ``max_{j != t} Z_j - Z_t + kappa``).
A per-sample binary search over ``c`` starts at ``initial_const``: multiply by 10 while
no adversarial has been found with the current ``c``, bisect once one has. With
``abort_early`` the inner optimisation stops when the (batch) loss has not fallen by
0.01 % over a tenth of ``steps``. Defaults are those of Foolbox 3's
``L2CarliniWagnerAttack``; the smallest adversarial seen over all steps is returned.

``precision="bf16"`` runs the optimisation's forward and backward passes under bf16 autocast
(about 2.8x faster per pass on a CPU with AMX; worth it only where the hardware has bf16),
with the loss in fp32. A bf16 pass can call a point adversarial that the fp32 model does
not, so its candidates are only pending: every tenth of ``steps`` (the abort-early schedule)
and at the end of each search, one fp32 forward pass checks each point's smallest pending
candidate that would improve on its result, and only confirmed ones become results. The
returned perturbations are adversarial for the fp32 model; the binary search over c follows
the bf16 verdicts.
"""

from __future__ import annotations

import math
from contextlib import nullcontext

import torch
from torch import Tensor

from ...classifier import Classifier
from ...threat import Eps
from ...validation import check_nonneg_float, check_positive_float, check_positive_int
from ..base import Attack, RunContext
from ..losses import margin_loss
from .common import BestTracker, margin_adversarial

PRECISIONS = ("fp32", "bf16")


class CarliniWagnerL2(Attack):
    """C&W L2: the smallest L2 perturbation found over a binary search on the constant c.

    Args:
        eps: None (default) for minimum norm inside the box; a radius projects the result
            onto the L2 ball and counts success within it. norm: 'l2' only.
        binary_search_steps: searches over c (per sample). steps: Adam steps per search.
        stepsize: Adam learning rate (in tanh space). confidence: the margin kappa an
            adversarial must exceed. initial_const: first value of c.
        abort_early: stop a search when the loss stalls (checked every ceil(steps / 10)).
        early_stop: skip points already adversarial at the start (norm 0); the others keep
            shrinking their perturbation after a first success (minimum norm).
        precision: 'fp32' (default) or 'bf16': gradient passes under bf16 autocast, every
            returned adversarial verified by an fp32 forward pass (see the module docstring).
    """

    name = "cw-l2"
    norms = ("l2",)
    requires_eps = False

    def __init__(self, eps: Eps | None = None, norm: object = "l2", *, binary_search_steps: int = 9,
                 steps: int = 10000, stepsize: float = 0.01, confidence: float = 0.0,
                 initial_const: float = 1e-3, abort_early: bool = True, early_stop: bool = True,
                 precision: str = "fp32", seed: int | None = None) -> None:
        super().__init__(eps, norm, early_stop=early_stop, seed=seed)
        self.binary_search_steps = check_positive_int(binary_search_steps, "binary_search_steps")
        self.steps = check_positive_int(steps, "steps")
        self.stepsize = check_positive_float(stepsize, "stepsize")
        self.confidence = check_nonneg_float(confidence, "confidence")
        self.initial_const = check_positive_float(initial_const, "initial_const")
        if not isinstance(abort_early, bool):
            raise ValueError(f"abort_early: expected a bool, got {abort_early!r}")
        self.abort_early = abort_early
        if precision not in PRECISIONS:
            raise ValueError(f"precision: expected one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.precision = precision

    def run(self, classifier: Classifier, x: Tensor, y: Tensor, ctx: RunContext) -> Tensor:
        low, high = ctx.threat.bounds
        centre, half = (low + high) / 2, (high - low) / 2
        w0 = torch.atanh((x - centre) / half * 0.999999)
        x_rec = torch.tanh(w0) * half + centre  # x as the tanh parametrisation sees it
        n = x.shape[0]
        kappa = self.confidence
        best = BestTracker(x, "l2")
        bf16 = self.precision == "bf16"
        pending = BestTracker(x, "l2") if bf16 else best  # bf16: candidates until fp32 verifies them
        autocast = torch.autocast(x.device.type, dtype=torch.bfloat16) if bf16 else nullcontext()
        consts = torch.full((n,), self.initial_const, device=x.device, dtype=torch.float64)
        lower = torch.zeros_like(consts)
        upper = torch.full_like(consts, math.inf)
        check_every = math.ceil(self.steps / 10)
        betas, adam_eps = (0.9, 0.999), 1e-8
        total_steps = 0
        for search in range(self.binary_search_steps):
            if search == self.binary_search_steps - 1 and self.binary_search_steps >= 10:
                consts = upper.clamp_max(1e10)  # last search: smallest successful c (1e10 if none)
            const = consts.to(x.dtype)
            delta = torch.zeros_like(w0)
            m, v = torch.zeros_like(w0), torch.zeros_like(w0)
            found = torch.zeros(n, dtype=torch.bool, device=x.device)
            previous_loss = math.inf
            for step in range(self.steps):
                delta.requires_grad_(True)
                x_adv = torch.tanh(w0 + delta) * half + centre
                with autocast:
                    logits = classifier(x_adv)
                margin = margin_loss(logits.float(), y, ctx.target)  # > 0: adversarial
                penalty = (kappa - margin).clamp_min(0)
                distance = (x_adv - x_rec).flatten(1).pow(2).sum(dim=1)
                loss = (const * penalty + distance).sum()
                grad, = torch.autograd.grad(loss, delta)
                total_steps += 1
                with torch.no_grad():
                    delta = delta.detach()
                    t = step + 1
                    m.mul_(betas[0]).add_(grad, alpha=1 - betas[0])
                    v.mul_(betas[1]).addcmul_(grad, grad, value=1 - betas[1])
                    m_hat = m / (1 - betas[0] ** t)
                    v_hat = v / (1 - betas[1] ** t)
                    is_adv = margin_adversarial(margin.detach(), kappa)
                    found |= is_adv
                    pending.update(x_adv, is_adv)
                    delta -= self.stepsize * m_hat / (v_hat.sqrt() + adam_eps)
                if step % check_every == 0:
                    if bf16:
                        self._verify(classifier, pending, best, y, ctx)
                    if self.abort_early:
                        current = float(loss.detach())
                        if not current <= 0.9999 * previous_loss:
                            break  # no progress over the last tenth of the steps
                        previous_loss = current
            if bf16:
                self._verify(classifier, pending, best, y, ctx)
            upper = torch.where(found, consts, upper)
            lower = torch.where(found, lower, consts)
            consts = torch.where(torch.isinf(upper), consts * 10, (lower + upper) / 2)
        ctx.steps = max(ctx.steps, total_steps)
        return best.result()

    def _verify(self, classifier: Classifier, pending: BestTracker, best: BestTracker, y: Tensor,
                ctx: RunContext) -> None:
        """Move the pending candidates that the fp32 model confirms into ``best``; clear ``pending``."""
        idx = (pending.norms < best.norms).nonzero().squeeze(1)
        if idx.numel() == 0:
            return
        with torch.no_grad():
            target = None if ctx.target is None else ctx.target[idx]
            margin = margin_loss(classifier(pending.adv[idx]), y[idx], target)
        is_adv = torch.zeros(pending.norms.shape, dtype=torch.bool, device=pending.norms.device)
        is_adv[idx] = margin_adversarial(margin, self.confidence)
        best.update(pending.adv, is_adv, pending.norms)
        pending.norms.fill_(math.inf)
