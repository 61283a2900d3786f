"""The Square attack: score-based black-box random search (Linf and L2).

Andriushchenko, Croce, Flammarion & Hein, "Square Attack: a query-efficient black-box
adversarial attack via random search", ECCV 2020 (and its use in AutoAttack, Croce & Hein,
ICML 2020: Linf, 5000 queries, p_init 0.8, margin loss).

Only model outputs are used (every query runs under ``torch.no_grad()``). Each iteration
proposes, for every point still being attacked (one batched forward pass), a change of a
random square of side ``round(sqrt(p * H * W))`` and keeps it when the loss improves:

- Linf: start from vertical stripes ``x + eps * (+-1 per channel and column)``; a proposal sets
  the square to ``x +- eps`` (one random sign per channel), resampling the signs when that
  would leave the square unchanged (as in the authors' code, a no-op wastes no query).
- L2: start from a 5 x 5 grid of bumps (concentric rectangles, opposite signs on two halves)
  with random signs, rescaled to norm eps; a proposal moves the perturbation's mass of a second
  random square and of the first into a fresh bump on the first (per channel), and rescales the
  whole perturbation to norm eps.

The fraction ``p`` follows the paper's schedule (halved after iterations 10, 50, 200, 500,
1000, 2000, 4000, 6000 and 8000 of 10,000), rescaled to the budget. ``queries`` bounds the
model queries per sample over the whole call, counting the initial one; with several restarts
the budget is split evenly between them. In evaluation mode (``early_stop``) a point stops as
soon as it is adversarial. Squares are drawn independently per sample, as in the paper's own
code; ``shared_squares=True`` instead draws one square (and, for Linf, one sign per channel) for
the whole batch at each iteration and never redraws a no-op proposal, as AutoAttack's reference
code and its PyTorch port in torchattacks do. The per-sample draw is the stronger of the two
(README: agreement table), so it is the default.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ...classifier import Classifier
from ...threat import Eps
from ...validation import check_positive_int
from ..base import Attack, RunContext, is_adversarial
from ..losses import get_loss
from .square_schedule import (bumps, get_window, p_schedule, put_window, random_corners, square_side,
                              window_index, window_mask)

_SIGN_RETRIES = 4  # resampling rounds for Linf proposals that would not change the square


def _signs(shape: tuple[int, ...], like: Tensor, generator: torch.Generator | None) -> Tensor:
    return (torch.randint(0, 2, shape, device=like.device, generator=generator) * 2 - 1).to(like.dtype)


def _corners(n: int, side: int, h: int, w: int, device: torch.device, generator: torch.Generator | None,
             shared: bool) -> tuple[Tensor, Tensor]:
    """Top-left corners of the n squares: drawn per sample, or one drawn for all (``shared``)."""
    rows, cols = random_corners(1 if shared else n, side, h, w, device, generator)
    return rows.expand(n), cols.expand(n)


class Square(Attack):
    """Square attack (Linf or L2), untargeted or targeted (``target=``: margin towards the target).

    Args:
        eps: radius of the threat model. norm: 'linf' or 'l2'.
        queries: model queries per sample for the whole call (initial query included).
        p_init: initial fraction of pixels changed per proposal, in (0, 1].
        restarts: runs on the points not yet broken, sharing the query budget evenly.
        loss: 'margin' (default) or 'ce', maximised.
        shared_squares: one square per iteration for the whole batch (AutoAttack's reference code)
            instead of one per sample.
    """

    name = "square"
    norms = ("linf", "l2")

    def __init__(self, eps: Eps, norm: object = "linf", *, queries: int = 5000, p_init: float = 0.8,
                 restarts: int = 1, loss: str = "margin", early_stop: bool = True,
                 shared_squares: bool = False, seed: int | None = None) -> None:
        super().__init__(eps, norm, early_stop=early_stop, seed=seed)
        if not isinstance(shared_squares, bool):
            raise TypeError(f"shared_squares: expected a bool, got {type(shared_squares).__name__}")
        self.shared_squares = shared_squares
        self.queries = check_positive_int(queries, "queries")
        self.restarts = check_positive_int(restarts, "restarts")
        if self.restarts > self.queries:
            raise ValueError(f"restarts: {restarts} restarts need at least as many queries, got queries={queries}")
        if isinstance(p_init, bool) or not isinstance(p_init, (int, float)) or not 0.0 < float(p_init) <= 1.0:
            raise ValueError(f"p_init: must lie in (0, 1], got {p_init!r}")
        self.p_init = float(p_init)
        get_loss(loss)
        self.loss = loss

    def run(self, classifier: Classifier, x: Tensor, y: Tensor, ctx: RunContext) -> Tensor:
        if x.ndim != 4:
            raise ValueError(f"x: the Square attack needs image batches (N, C, H, W), got shape {tuple(x.shape)}")
        with torch.no_grad():
            return self._run(classifier, x, y, ctx)

    def _run(self, classifier: Classifier, x: Tensor, y: Tensor, ctx: RunContext) -> Tensor:
        n = x.shape[0]
        eps = ctx.threat.eps_tensor(x)
        used = torch.zeros(n, dtype=torch.int64, device=x.device)
        best = x.clone()
        best_loss = torch.full((n,), float("-inf"), device=x.device)
        broken = torch.zeros(n, dtype=torch.bool, device=x.device)
        for restart in range(self.restarts):
            budget = self.queries // self.restarts + (1 if restart < self.queries % self.restarts else 0)
            todo = (~broken).nonzero().squeeze(1) if ctx.early_stop else torch.arange(n, device=x.device)
            if todo.numel() == 0:
                break
            target = None if ctx.target is None else ctx.target[todo]
            adv, loss, success, spent = self._single_run(classifier, x[todo], y[todo], target, eps[todo],
                                                         budget, ctx)
            used[todo] += spent
            take = loss > best_loss[todo]
            if ctx.early_stop:
                take = take | success
            best[todo[take]] = adv[take]
            best_loss[todo[take]] = loss[take]
            broken[todo] |= success & take
        ctx.sample_queries = used
        return best

    # ------------------------------------------------------------------ one run
    def _single_run(self, classifier: Classifier, x: Tensor, y: Tensor, target: Tensor | None, eps: Tensor,
                    budget: int, ctx: RunContext) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Random search from the paper's initialisation; returns (best, its loss, success, queries)."""
        loss_fn = get_loss(self.loss)
        low, high = ctx.threat.bounds
        n = x.shape[0]
        e = eps.view(n, 1, 1, 1)
        x_best = self._init_linf(x, e, low, high, ctx) if self.norm == "linf" else self._init_l2(x, e, low, high, ctx)
        logits = classifier(x_best)
        loss_best = loss_fn(logits, y, target)
        success = is_adversarial(logits, y, target)
        spent = torch.ones(n, dtype=torch.int64, device=x.device)
        # the working set: points still attacked (all of them without early stop)
        idx = (~success).nonzero().squeeze(1) if ctx.early_stop else torch.arange(n, device=x.device)
        cx, cbest, closs, csucc, ce, cy = (t[idx] for t in (x, x_best, loss_best, success, e, y))
        ctarget = None if target is None else target[idx]
        iterations = 0
        for it in range(budget - 1):
            if idx.numel() == 0:
                break
            iterations += 1
            p = p_schedule(self.p_init, it, budget)
            if self.norm == "linf":
                x_new = self._propose_linf(cx, cbest, ce, p, low, high, ctx, self.shared_squares)
            else:
                x_new = self._propose_l2(cx, cbest, ce, p, low, high, ctx, self.shared_squares)
            logits = classifier(x_new)
            new_loss = loss_fn(logits, cy, ctarget)
            new_succ = is_adversarial(logits, cy, ctarget)
            spent[idx] += 1
            accept = new_loss > closs
            if ctx.early_stop:
                accept = accept | new_succ
            cbest = torch.where(accept.view(-1, 1, 1, 1), x_new, cbest)
            closs = torch.where(accept, new_loss, closs)
            csucc = torch.where(accept, new_succ, csucc)
            if ctx.early_stop and bool(new_succ.any()):  # early exit: write back and shrink
                done = new_succ
                x_best[idx[done]], loss_best[idx[done]], success[idx[done]] = cbest[done], closs[done], True
                keep = ~done
                idx, cx, cbest, closs, csucc, ce, cy = (t[keep] for t in (idx, cx, cbest, closs, csucc, ce, cy))
                ctarget = None if ctarget is None else ctarget[keep]
        x_best[idx], loss_best[idx], success[idx] = cbest, closs, csucc
        ctx.steps = max(ctx.steps, iterations)
        return x_best, loss_best, success, spent

    # ------------------------------------------------------------------ initialisations
    @staticmethod
    def _init_linf(x: Tensor, e: Tensor, low: float, high: float, ctx: RunContext) -> Tensor:
        """Vertical stripes: one random sign per sample, channel and column."""
        n, c, _, w = x.shape
        return (x + e * _signs((n, c, 1, w), x, ctx.generator)).clamp(low, high)

    @staticmethod
    def _init_l2(x: Tensor, e: Tensor, low: float, high: float, ctx: RunContext) -> Tensor:
        """A grid of bumps of side H // 5 with random signs, rescaled to L2 norm eps."""
        n, c, h, w = x.shape
        side = max(h // 5, 1)
        rows, cols = h // side, w // side
        top, left = (h - rows * side) // 2, (w - cols * side) // 2
        delta = torch.zeros_like(x)
        for i in range(rows):
            for j in range(cols):
                r, q = top + i * side, left + j * side
                delta[:, :, r:r + side, q:q + side] += (bumps(n, side, x.device, x.dtype, ctx.generator)
                                                        * _signs((n, c, 1, 1), x, ctx.generator))
        norm = delta.flatten(1).norm(dim=1).clamp_min(1e-12).view(n, 1, 1, 1)
        return (x + delta / norm * e).clamp(low, high)

    # ------------------------------------------------------------------ proposals
    @staticmethod
    def _propose_linf(x: Tensor, x_best: Tensor, e: Tensor, p: float, low: float, high: float,
                      ctx: RunContext, shared: bool) -> Tensor:
        n, c, h, w = x.shape
        side = square_side(p, h, w, c)
        rows, cols = _corners(n, side, h, w, x.device, ctx.generator, shared)
        index = window_index(rows, cols, side)
        x_win, best_win = get_window(x, index), get_window(x_best, index)
        signs = _signs((1 if shared else n, c, 1, 1), x, ctx.generator).expand(n, c, 1, 1)
        for _ in range(0 if shared else _SIGN_RETRIES):  # a proposal equal to the current square wastes a query: redraw
            unchanged = ((x_win + e * signs).clamp(low, high) - best_win).abs().flatten(1).amax(dim=1) < 1e-7
            fresh = -signs if c == 1 else _signs((n, c, 1, 1), x, ctx.generator)
            signs = torch.where(unchanged.view(n, 1, 1, 1), fresh, signs)
        return put_window(x_best, index, (x_win + e * signs).clamp(low, high))

    @staticmethod
    def _propose_l2(x: Tensor, x_best: Tensor, e: Tensor, p: float, low: float, high: float,
                    ctx: RunContext, shared: bool) -> Tensor:
        n, c, h, w = x.shape
        side = square_side(p, h, w, c, minimum=3)
        if side % 2 == 0:  # odd sides, as in the paper's code
            side = side + 1 if side + 1 <= min(h, w) else side - 1
        delta = x_best - x
        rows1, cols1 = _corners(n, side, h, w, x.device, ctx.generator, shared)
        rows2, cols2 = _corners(n, side, h, w, x.device, ctx.generator, shared)
        index1 = window_index(rows1, cols1, side)
        mask1 = window_mask(rows1, cols1, side, h, w)
        mask2 = window_mask(rows2, cols2, side, h, w)
        old = get_window(delta, index1)
        old_norm = old.pow(2).sum(dim=(2, 3), keepdim=True).sqrt()
        image_norm = delta.flatten(1).norm(dim=1).view(n, 1, 1, 1)
        union_norm = (delta * (mask1 | mask2)).pow(2).sum(dim=(2, 3), keepdim=True).sqrt()  # per channel
        new = bumps(n, side, x.device, x.dtype, ctx.generator) * _signs((n, c, 1, 1), x, ctx.generator)
        new = new + old / (old_norm + 1e-12)
        budget = ((e ** 2 - image_norm ** 2).clamp_min(0) / c + union_norm ** 2).sqrt()
        new = new / new.pow(2).sum(dim=(2, 3), keepdim=True).sqrt().clamp_min(1e-12) * budget
        delta = put_window(delta * ~mask2, index1, new)
        norm = delta.flatten(1).norm(dim=1).clamp_min(1e-12).view(n, 1, 1, 1)
        return (x + delta / norm * e).clamp(low, high)
