"""Fast Adaptive Boundary attack (FAB) and its targeted version FAB-T.

Croce & Hein, "Minimally distorted Adversarial Examples with a Fast Adaptive Boundary
Attack", ICML 2020; FAB-T as run by AutoAttack (Croce & Hein, "Reliable evaluation of
adversarial robustness with an ensemble of diverse parameter-free attacks", ICML 2020).

Every iteration linearises the classifier at the current iterate ``x1``: the decision
boundary to each other class k becomes the hyperplane ``f_k(x1) + <grad f_k(x1), z - x1> = 0``
with ``f_k = z_k - z_y`` (FAB: the class whose hyperplane is closest in the dual norm, from the
gradients of all classes, one forward pass and one backward pass per class for the whole
batch; FAB-T: one given target class, one backward pass). Both ``x1`` and the original point
``x`` are projected onto that hyperplane intersected with the input box (the exact
box-constrained projections of :mod:`.fab_projection`), giving steps ``d1`` and ``d2``; the new
iterate is the biased combination

    x1 <- clip((1 - a) (x1 + eta d1) + a (x + eta d2)),   a = min(|d1| / (|d1| + |d2|), alpha_max),

which extrapolates (``eta``) past the boundary and stays close to ``x`` (``a``). Once ``x1`` is
adversarial it is recorded when closer than the best so far and pulled back towards ``x``:
``x1 <- x + beta (x1 - x)``. Restart 0 starts from ``x``, later restarts from a random point of
the sphere of radius ``min(eps, best norm so far) / 2`` around ``x`` (the paper's rule; without
eps, AutoAttack's default radii 0.3 / 1 / 5 for Linf / L2 / L1, scaled to the box width, stand
in for eps).

With an explicit ``target=`` the boundary linearised is the one between the target and the
strongest other class at ``x1`` (``z_t - z_r``), and success means predicting the target; FAB-T
without ``target=`` (AutoAttack) linearises ``z_t - z_y`` and counts any misclassification.

With ``eps`` given (AutoAttack use) a point only counts as broken when the perturbation found
lies within eps; the output is ``x`` for the others, and with ``early_stop`` a point leaves the
loop as soon as it is broken within eps (its outcome cannot change any more). With
``eps=None`` the attack returns the smallest adversarial perturbation found per sample (its
norm is in ``result.norms``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ...classifier import Classifier
from ...threat import Eps, flat_norm
from ...validation import check_positive_int
from ..base import Attack, RunContext
from .fab_projection import project_hyperplane_box

#: AutoAttack's FAB radii for random restarts when no eps is given (inputs in [0, 1]).
DEFAULT_RESTART_RADIUS = {"linf": 0.3, "l2": 1.0, "l1": 5.0}
_DUAL = {"linf": "l1", "l2": "l2", "l1": "linf"}


def _unit_interval(value: object, name: str, *, open_low: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    value = float(value)
    if not (0.0 < value <= 1.0 if open_low else 0.0 <= value <= 1.0):
        raise ValueError(f"{name}: must lie in {'(0, 1]' if open_low else '[0, 1]'}, got {value}")
    return value


class FAB(Attack):
    """FAB, minimum-norm in Linf, L2 or L1: untargeted, or towards ``target=`` when given.

    Args:
        eps: radius for the success criterion and the random restarts; None (default) means
            no bound: the minimum-norm point is returned.
        norm: 'linf', 'l2' or 'l1'.
        steps: iterations per restart (AutoAttack: 100).
        restarts: runs per point; restart 0 starts from x, the others at random.
        alpha_max: largest weight of the projection of x in the combined step.
        eta: extrapolation factor (>= 1) past the linearised boundary.
        beta: backward step towards x after each success, in (0, 1].
    """

    name = "fab"
    requires_eps = False

    def __init__(self, eps: Eps | None = None, norm: object = "linf", *, steps: int = 100, restarts: int = 1,
                 alpha_max: float = 0.1, eta: float = 1.05, beta: float = 0.9, early_stop: bool = True,
                 seed: int | None = None) -> None:
        super().__init__(eps, norm, early_stop=early_stop, seed=seed)
        self.steps = check_positive_int(steps, "steps")
        self.restarts = check_positive_int(restarts, "restarts")
        self.alpha_max = _unit_interval(alpha_max, "alpha_max")
        if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not 1.0 <= float(eta) < float("inf"):
            raise ValueError(f"eta: expected a finite number >= 1, got {eta!r}")
        self.eta = float(eta)
        self.beta = _unit_interval(beta, "beta", open_low=True)

    # ------------------------------------------------------------------ entry point
    def run(self, classifier: Classifier, x: Tensor, y: Tensor, ctx: RunContext) -> Tensor:
        eps = ctx.threat.eps_tensor(x)
        if ctx.target is not None:  # reach the given class, linearising towards it
            best, norms = self._search(classifier, x, y, eps, ctx, towards=ctx.target, goal=ctx.target)
        else:
            best, norms = self._search(classifier, x, y, eps, ctx, towards=None, goal=None)
        return self._within_eps(x, best, norms, eps)

    # ------------------------------------------------------------------ building blocks
    @staticmethod
    def _within_eps(x: Tensor, best: Tensor, norms: Tensor, eps: Tensor) -> Tensor:
        """The best point where it lies within eps, else x (a failure is reported as x)."""
        keep = (norms <= eps).view(-1, *([1] * (x.ndim - 1)))
        return torch.where(keep, best, x)

    def _stops_within_eps(self, ctx: RunContext, eps: Tensor) -> bool:
        """Whether points leave once broken within eps (evaluation with a finite eps)."""
        return ctx.early_stop and bool(torch.isfinite(eps).all())

    def _search(self, classifier: Classifier, x: Tensor, y: Tensor, eps: Tensor, ctx: RunContext,
                towards: Tensor | None, goal: Tensor | None) -> tuple[Tensor, Tensor]:
        """All restarts; returns the closest adversarial point per sample and its norm (inf: none)."""
        best = x.clone()
        best_norm = torch.full((x.shape[0],), float("inf"), device=x.device, dtype=x.dtype)
        stop_within = self._stops_within_eps(ctx, eps)
        for restart in range(self.restarts):
            todo = torch.arange(x.shape[0], device=x.device)
            if stop_within:
                todo = (best_norm > eps).nonzero().squeeze(1)
                if todo.numel() == 0:
                    break
            xs, ys = x[todo], y[todo]
            start = xs if restart == 0 else self._random_start(xs, best_norm[todo], eps[todo], ctx)
            adv, norm = self._single_run(classifier, xs, ys, start, eps[todo],
                                         None if towards is None else towards[todo],
                                         None if goal is None else goal[todo], stop_within, ctx)
            better = norm < best_norm[todo]
            best[todo[better]] = adv[better]
            best_norm[todo[better]] = norm[better]
        return best, best_norm

    def _random_start(self, x: Tensor, best_norm: Tensor, eps: Tensor, ctx: RunContext) -> Tensor:
        """A point on the sphere of radius min(eps, best norm) / 2 around x, clipped to the box."""
        low, high = ctx.threat.bounds
        fallback = torch.full_like(eps, DEFAULT_RESTART_RADIUS[self.norm] * (high - low))
        radius = torch.minimum(torch.where(torch.isfinite(eps), eps, fallback), best_norm) / 2
        kw = {"device": x.device, "dtype": x.dtype, "generator": ctx.generator}
        noise = torch.rand(x.shape, **kw) * 2 - 1 if self.norm == "linf" else torch.randn(x.shape, **kw)
        noise = noise / flat_norm(noise, self.norm).clamp_min(1e-12).view(-1, *([1] * (x.ndim - 1)))
        return (x + noise * radius.view(-1, *([1] * (x.ndim - 1)))).clamp(low, high)

    def _boundary_terms(self, classifier: Classifier, x1: Tensor, y: Tensor, towards: Tensor | None,
                        goal: Tensor | None) -> tuple[Tensor, Tensor]:
        """Logit differences at x1 whose zero sets are the boundaries: values ``f`` (n, K) and
        gradients ``g`` (n, K, D), negative on the side of x.

        Untargeted: ``z_k - z_y`` for every class (K = C; the true class is marked with f = nan
        and ignored); FAB-T: ``z_t - z_y`` for the class ``towards`` only (K = 1); an explicit
        target (``goal``): ``z_t - z_r`` with r the strongest other class at x1, so that crossing
        the hyperplane makes t the prediction.
        """
        n = x1.shape[0]
        rows = torch.arange(n, device=x1.device)
        with torch.enable_grad():
            xv = x1.detach().requires_grad_(True)
            logits = classifier(xv)
            if towards is not None:
                rival = y
                if goal is not None:
                    rival = logits.detach().scatter(1, goal[:, None], float("-inf")).argmax(dim=1)
                diff = logits[rows, towards] - logits[rows, rival]
                grad, = torch.autograd.grad(diff.sum(), xv)
                return diff.detach()[:, None], grad.flatten(1)[:, None, :]
            num_classes = logits.shape[1]
            grads = [torch.autograd.grad(logits[:, k].sum(), xv, retain_graph=k < num_classes - 1)[0].flatten(1)
                     for k in range(num_classes)]
        grads = torch.stack(grads, dim=1)
        logits = logits.detach()
        f = logits - logits[rows, y][:, None]
        g = grads - grads[rows, y][:, None, :]
        return f.scatter(1, y[:, None], float("nan")), g

    def _single_run(self, classifier: Classifier, x: Tensor, y: Tensor, start: Tensor, eps: Tensor,
                    towards: Tensor | None, goal: Tensor | None, stop_within: bool,
                    ctx: RunContext) -> tuple[Tensor, Tensor]:
        """One FAB run from ``start``; returns the closest adversarial point found and its norm."""
        low, high = ctx.threat.bounds
        n, shape = x.shape[0], x.shape
        best = x.clone()
        best_norm = torch.full((n,), float("inf"), device=x.device, dtype=x.dtype)
        # working set (shrinks when points are broken within eps and early_stop is on)
        idx = torch.arange(n, device=x.device)
        x0, x1, labels = x.flatten(1), start.flatten(1).clone(), y
        cur_eps, cur_best = eps, best_norm.clone()
        steps_run = 0
        for _ in range(self.steps):
            steps_run += 1
            m = x1.shape[0]
            f, g = self._boundary_terms(classifier, x1.view(m, *shape[1:]), labels,
                                        None if towards is None else towards[idx],
                                        None if goal is None else goal[idx])
            dist = f.abs() / (flat_norm(g.reshape(-1, g.shape[2]), _DUAL[self.norm]).view(m, -1) + 1e-12)
            k = torch.nan_to_num(dist, nan=float("inf")).argmin(dim=1)
            rows = torch.arange(m, device=x.device)
            w = g[rows, k]
            b = (w * x1).sum(dim=1) - f[rows, k]
            d = project_hyperplane_box(torch.cat((x1, x0)), torch.cat((w, w)), torch.cat((b, b)),
                                       self.norm, low, high)
            d_norm = flat_norm(d, self.norm).clamp_min(1e-8)
            d1, d2, a1, a2 = d[:m], d[m:], d_norm[:m], d_norm[m:]
            alpha = (a1 / (a1 + a2)).clamp(0.0, self.alpha_max)[:, None]
            x1 = ((x1 + self.eta * d1) * (1 - alpha) + (x0 + self.eta * d2) * alpha).clamp(low, high)
            with torch.no_grad():
                pred = classifier(x1.view(m, *shape[1:])).argmax(dim=1)
            adv = pred == goal[idx] if goal is not None else pred != labels
            dist_now = flat_norm(x1 - x0, self.norm)
            better = adv & (dist_now < cur_best)
            best[idx[better]] = x1[better].view(-1, *shape[1:])
            cur_best = torch.where(better, dist_now, cur_best)
            x1 = torch.where(adv[:, None], x0 + self.beta * (x1 - x0), x1)
            if stop_within:
                keep = cur_best > cur_eps
                if not bool(keep.all()):
                    best_norm[idx[~keep]] = cur_best[~keep]
                    idx, x0, x1, labels, cur_eps, cur_best = (t[keep] for t in (idx, x0, x1, labels, cur_eps,
                                                                                cur_best))
                    if idx.numel() == 0:
                        break
        best_norm[idx] = cur_best
        ctx.steps = max(ctx.steps, steps_run)
        return best, best_norm


class FABT(FAB):
    """Targeted FAB (FAB-T) as in AutoAttack.

    Without ``target=`` it runs FAB linearised towards each of the ``n_target_classes``
    highest-scoring other classes of the clean input in turn (success: any misclassification),
    with a finite eps only on the points no earlier target broke within eps; with ``eps=None``
    every target runs on every point and the smallest perturbation is kept. With ``target=``
    it attacks that class (success: the target is predicted).

    AutoAttack standard: ``FABT(eps, steps=100, restarts=1, n_target_classes=9)``.
    """

    name = "fab-t"

    def __init__(self, eps: Eps | None = None, norm: object = "linf", *, steps: int = 100, restarts: int = 1,
                 n_target_classes: int = 9, alpha_max: float = 0.1, eta: float = 1.05, beta: float = 0.9,
                 early_stop: bool = True, seed: int | None = None) -> None:
        super().__init__(eps, norm, steps=steps, restarts=restarts, alpha_max=alpha_max, eta=eta, beta=beta,
                         early_stop=early_stop, seed=seed)
        self.n_target_classes = check_positive_int(n_target_classes, "n_target_classes")

    def run(self, classifier: Classifier, x: Tensor, y: Tensor, ctx: RunContext) -> Tensor:
        if ctx.target is not None:
            return super().run(classifier, x, y, ctx)
        eps = ctx.threat.eps_tensor(x)
        with torch.no_grad():
            logits = classifier(x)
        # other classes ranked by their clean score (AutoAttack: 2nd, 3rd, ... highest logit)
        ranked = logits.float().scatter(1, y[:, None], float("-inf")).argsort(dim=1, descending=True)
        best = x.clone()
        best_norm = torch.full((x.shape[0],), float("inf"), device=x.device, dtype=x.dtype)
        stop_within = self._stops_within_eps(ctx, eps)
        for rank in range(min(self.n_target_classes, logits.shape[1] - 1)):
            todo = torch.arange(x.shape[0], device=x.device)
            if stop_within:
                todo = (best_norm > eps).nonzero().squeeze(1)
                if todo.numel() == 0:
                    break
            adv, norm = self._search(classifier, x[todo], y[todo], eps[todo], ctx,
                                     towards=ranked[todo, rank], goal=None)
            better = norm < best_norm[todo]
            best[todo[better]] = adv[better]
            best_norm[todo[better]] = norm[better]
        return self._within_eps(x, best, best_norm, eps)
