"""Auto-PGD (APGD) and its targeted version APGD-T, in Linf, L2 and L1.

Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks", ICML 2020 (AutoAttack). APGD is PGD with momentum whose step size
needs no tuning: it starts at ``2 * eps`` and is halved at the checkpoints ``w_j`` (see
:mod:`.apgd_schedule`) when, since the previous checkpoint,

1. fewer than ``rho * (w_j - w_{j-1})`` steps increased the loss, or
2. the step size was not halved at the previous checkpoint and the best loss did not improve;

a halved sample restarts from its best point so far. Each step is
``z = P(x_k + eta * s(grad))``, ``x_{k+1} = P(x_k + alpha (z - x_k) + (1 - alpha)(x_k - x_{k-1}))``
with ``alpha = 0.75`` (no momentum on the first step) and ``P`` the projection onto the
threat model. Per sample, the point of highest loss is kept.

APGD-L1 follows Croce & Hein, "Mind the box: l1-APGD for sparse adversarial attacks on image
classifiers", ICML 2021: sparse steps on the top-k coordinates of the gradient with k adapted
to the sparsity of the best point, step size ``eps`` divided by 1.5 at each checkpoint (at
least ``eps / 10``) unless the best point became much sparser, and the exact projection onto
the L1 ball intersected with the input box. Not included: AutoAttack-L1's warm start with
radii 3 eps, 2 eps, eps over 30/30/40 % of the iterations (``use_largereps``).

Where the authors' code differs from the paper's text, the paper is followed: Condition 1 is
strict ("fewer than", the code counts "at most"), Condition 2 applies from the first checkpoint
on, and the first step's increase is measured against the loss at the random start. The
random start is uniform in the ball (the code puts it on the sphere or the cube's corners).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from ...classifier import Classifier
from ...threat import Eps, ThreatModel
from ...validation import check_positive_int
from ..base import Attack, RunContext, is_adversarial
from ..losses import get_loss
from .apgd_schedule import checkpoints, l1_checkpoints, l1_sparse_step, project_l1_box

_INF = float("inf")

State = dict[str, "Tensor | None"]


def _per_sample(v: Tensor, like: Tensor) -> Tensor:
    return v.view(-1, *([1] * (like.ndim - 1)))


def _project(norm: str, point: Tensor, x: Tensor, eps: Tensor, bounds: tuple[float, float]) -> Tensor:
    """Onto the eps-ball around x (per-sample eps), then into the bounds; L1 exactly onto ball and box."""
    delta = point - x
    if norm == "l1":
        return (x + project_l1_box(delta, x, eps, bounds)).clamp(*bounds)
    if norm == "linf":
        e = _per_sample(eps, x)
        delta = torch.maximum(torch.minimum(delta, e), -e)
    else:
        length = delta.flatten(1).norm(p=2, dim=1)
        delta = delta * _per_sample((eps / length.clamp_min(1e-12)).clamp(max=1.0), x)
    return (x + delta).clamp(*bounds)


class APGD(Attack):
    """Auto-PGD (Croce & Hein, ICML 2020), untargeted; targeted when called with ``target=``.

    Args:
        eps: radius (float or one per sample). norm: 'linf', 'l2' or 'l1' (APGD-L1 of "Mind the box").
        steps: iterations per restart (AutoAttack: 100).
        restarts: random restarts; in evaluation mode a restart only attacks points still robust.
        loss: 'ce' (APGD-CE) or 'dlr' (APGD-DLR); any loss of :mod:`parry.attacks.losses` works.
        rho: Condition 1's fraction of loss-increasing steps (paper: 0.75).
        early_stop: evaluation mode: a point is frozen as soon as it is adversarial.
        seed: seed of the random starts.
    """

    name = "apgd"
    momentum = 0.75        # alpha of the paper (a constant, not a parameter)
    initial_step = 2.0     # eta_0 = 2 eps in Linf and L2
    l1_initial_step = 1.0  # APGD-L1: eta_0 = eps, shrunk by 1.5 per checkpoint down to eps / 10
    l1_shrink, l1_min_step, l1_topk = 1.5, 10.0, 0.2

    def __init__(self, eps: Eps, norm: object = "linf", *, steps: int = 100, restarts: int = 1,
                 loss: str = "ce", rho: float = 0.75, early_stop: bool = True, seed: int | None = None) -> None:
        super().__init__(eps, norm, early_stop=early_stop, seed=seed)
        self.steps = check_positive_int(steps, "steps")
        self.restarts = check_positive_int(restarts, "restarts")
        get_loss(loss)
        self.loss = loss
        if isinstance(rho, bool) or not isinstance(rho, (int, float)) or not 0.0 <= rho <= 1.0:
            raise ValueError(f"rho: expected a number in [0, 1], got {rho!r}")
        self.rho = float(rho)

    def run(self, classifier: Classifier, x: Tensor, y: Tensor, ctx: RunContext) -> Tensor:
        best = x.clone()
        score = torch.full((x.shape[0],), -_INF, device=x.device)
        self._restarts(classifier, x, y, ctx.target, ctx.target, ctx, best, score)
        return best

    # ------------------------------------------------------------------ restarts
    def _restarts(self, classifier: Classifier, x: Tensor, y: Tensor, loss_target: Tensor | None,
                  success_target: Tensor | None, ctx: RunContext, best: Tensor, score: Tensor) -> None:
        """Run the restarts, updating ``best`` and ``score`` (+inf: adversarial, else loss) in place.

        In evaluation mode only points with a finite score (not yet adversarial) are attacked.
        """
        eps = ctx.threat.eps_tensor(x)
        for _ in range(self.restarts):
            todo = (score < _INF).nonzero().squeeze(1) if ctx.early_stop else None
            if todo is not None and todo.numel() == 0:
                return
            if todo is None or todo.numel() == x.shape[0]:
                points, new = self._single_run(classifier, x, y, loss_target, success_target, eps, ctx)
                better = new > score
                best[better] = points[better]
                score[better] = new[better]
                continue
            pick = (lambda t: None if t is None else t[todo])  # noqa: E731
            points, new = self._single_run(classifier, x[todo], y[todo], pick(loss_target),
                                           pick(success_target), eps[todo], ctx)
            better = new > score[todo]
            best[todo[better]] = points[better]
            score[todo[better]] = new[better]

    # ------------------------------------------------------------------ one run
    def _single_run(self, classifier: Classifier, x: Tensor, y: Tensor, loss_target: Tensor | None,
                    success_target: Tensor | None, eps: Tensor, ctx: RunContext) -> tuple[Tensor, Tensor]:
        """One APGD run from a random start: per sample the point returned and its score."""
        loss_fn = get_loss(self.loss)
        bounds = ctx.threat.bounds
        start = self._random_start(x, eps, bounds, ctx.generator)
        logits, loss, grad = self._evaluate(classifier, start, y, loss_target, loss_fn, need_grad=True)
        l1 = self.norm == "l1"
        step = eps * (self.l1_initial_step if l1 else self.initial_step)
        s: State = {
            "x": x, "y": y, "loss_target": loss_target, "success_target": success_target, "eps": eps,
            "current": start, "previous": start, "grad": grad, "loss": loss, "step": step,
            "best": start, "best_grad": grad, "best_loss": loss,
            "increases": torch.zeros_like(loss), "last_best": loss, "halved": torch.zeros_like(loss, dtype=torch.bool),
        }
        if l1:
            dim = x[0].numel()
            s["topk"] = torch.full_like(loss, self.l1_topk)
            s["sparsity"] = torch.full_like(loss, float(dim))
        if not ctx.early_stop:
            s["found"] = torch.zeros_like(loss, dtype=torch.bool)
            s["found_point"] = start.clone()

        out = start.clone()
        score = torch.full_like(loss, -_INF)
        active = torch.arange(x.shape[0], device=x.device)
        marks = l1_checkpoints(self.steps) if l1 else checkpoints(self.steps)
        checks = {w: w - before for before, w in zip(marks, marks[1:])}
        steps_run = 0

        for i in range(self.steps + 1):
            if i > 0:
                new = self._step(s, bounds, first=i == 1)
                s["previous"], s["current"] = s["current"], new
                logits, loss, grad = self._evaluate(classifier, new, s["y"], s["loss_target"], loss_fn,
                                                    need_grad=i < self.steps)
                steps_run = i
            adversarial = is_adversarial(logits, s["y"], s["success_target"])
            if ctx.early_stop:
                if bool(adversarial.any()):  # the one host sync per step: shrink the active set
                    out[active[adversarial]] = s["current"][adversarial]
                    score[active[adversarial]] = _INF
                    keep = ~adversarial
                    active, loss = active[keep], loss[keep]
                    grad = None if grad is None else grad[keep]
                    s = {k: None if v is None else v[keep] for k, v in s.items()}
                    if active.numel() == 0:
                        break
            else:
                s["found"] = s["found"] | adversarial
                s["found_point"] = torch.where(_per_sample(adversarial, x), s["current"], s["found_point"])
            if i == 0:
                continue
            self._track_best(s, loss, grad)
            if i in checks and i < self.steps:
                (self._l1_checkpoint if l1 else self._checkpoint)(s, checks[i])

        ctx.steps = max(ctx.steps, steps_run)
        out[active] = s["best"]
        score[active] = s["best_loss"]
        if not ctx.early_stop:
            found = s["found"]
            out = torch.where(_per_sample(found, out), s["found_point"], out)
            score = torch.where(found, torch.full_like(score, _INF), score)
        return out, score

    @staticmethod
    def _evaluate(classifier: Classifier, point: Tensor, y: Tensor, target: Tensor | None,
                  loss_fn: Callable, need_grad: bool) -> tuple[Tensor, Tensor, Tensor | None]:
        """Logits, per-sample loss and (when needed) its gradient with respect to ``point``."""
        if not need_grad:
            with torch.no_grad():
                logits = classifier(point)
                return logits, loss_fn(logits, y, target), None
        point = point.detach().requires_grad_(True)
        logits = classifier(point)
        loss = loss_fn(logits, y, target)
        grad, = torch.autograd.grad(loss.sum(), point)
        return logits.detach(), loss.detach(), grad

    def _random_start(self, x: Tensor, eps: Tensor, bounds: tuple[float, float],
                      generator: torch.Generator | None) -> Tensor:
        if self.norm == "l1":  # as APGD-L1: Gaussian noise projected onto the ball and the box
            noise = torch.randn(x.shape, device=x.device, dtype=x.dtype, generator=generator)
            return _project("l1", x + noise, x, eps, bounds)
        return ThreatModel(self.norm, eps, bounds).random_init(x, generator)

    # ------------------------------------------------------------------ iteration pieces
    def _step(self, s: State, bounds: tuple[float, float], first: bool) -> Tensor:
        current, grad, x, eps = s["current"], s["grad"], s["x"], s["eps"]
        step = _per_sample(s["step"], current)
        if self.norm == "l1":  # APGD-L1 takes no momentum
            return _project("l1", current + step * l1_sparse_step(grad, s["topk"]), x, eps, bounds)
        if self.norm == "linf":
            direction = grad.sign()
        else:
            direction = grad / _per_sample(grad.flatten(1).norm(p=2, dim=1).clamp_min(1e-12), grad)
        z = _project(self.norm, current + step * direction, x, eps, bounds)
        if first:
            return z
        a = self.momentum
        return _project(self.norm, current + a * (z - current) + (1 - a) * (current - s["previous"]), x, eps, bounds)

    @staticmethod
    def _track_best(s: State, loss: Tensor, grad: Tensor | None) -> None:
        s["increases"] = s["increases"] + (loss > s["loss"]).to(loss.dtype)
        s["loss"] = loss
        improved = loss > s["best_loss"]
        s["best_loss"] = torch.where(improved, loss, s["best_loss"])
        s["best"] = torch.where(_per_sample(improved, s["best"]), s["current"], s["best"])
        if grad is not None:
            s["grad"] = grad
            s["best_grad"] = torch.where(_per_sample(improved, grad), grad, s["best_grad"])

    def _restart_from_best(self, s: State, mask: Tensor) -> None:
        m = _per_sample(mask, s["current"])
        s["current"] = torch.where(m, s["best"], s["current"])
        s["grad"] = torch.where(m, s["best_grad"], s["grad"])

    def _checkpoint(self, s: State, interval: int) -> None:
        """Conditions 1 and 2 of the paper: halve the step and restart from the best point."""
        oscillating = s["increases"] < self.rho * interval
        stalled = ~s["halved"] & (s["best_loss"] <= s["last_best"])
        halve = oscillating | stalled
        s["step"] = torch.where(halve, s["step"] / 2, s["step"])
        self._restart_from_best(s, halve)
        s["halved"], s["last_best"] = halve, s["best_loss"]
        s["increases"] = torch.zeros_like(s["increases"])

    def _l1_checkpoint(self, s: State, interval: int) -> None:
        """APGD-L1: adapt k to the sparsity of the best point and shrink the step, or reset both
        (and restart from the best point) when the best point got clearly sparser."""
        dim = s["x"][0].numel()
        sparsity = (s["best"] != s["x"]).flatten(1).sum(dim=1).to(s["step"].dtype)
        sparser = sparsity < 0.95 * s["sparsity"]
        s["topk"] = sparsity / dim / self.l1_shrink
        top = s["eps"] * self.l1_initial_step
        shrunk = torch.where(sparser, top, s["step"] / self.l1_shrink)
        s["step"] = torch.minimum(torch.maximum(shrunk, top / self.l1_min_step), top)
        s["sparsity"] = sparsity
        self._restart_from_best(s, sparser)


class APGDT(APGD):
    """APGD-T (Croce & Hein, ICML 2020): APGD on the targeted DLR loss.

    Called without ``target=`` (AutoAttack's use), it attacks in turn the ``n_target_classes``
    top-scoring wrong classes of the clean point (the k-th highest logit other than ``y`` for
    target k), each with ``restarts`` restarts and, in evaluation mode, only on points still
    robust; success means misclassified. Called with ``target=``, it attacks that target and
    success means reaching it. Defaults are AutoAttack-standard: 100 steps, 1 restart, 9 targets
    (fewer when the model has fewer than 10 classes).
    """

    name = "apgd-t"

    def __init__(self, eps: Eps, norm: object = "linf", *, steps: int = 100, restarts: int = 1,
                 n_target_classes: int = 9, rho: float = 0.75, early_stop: bool = True,
                 seed: int | None = None) -> None:
        super().__init__(eps, norm, steps=steps, restarts=restarts, loss="dlr", rho=rho,
                         early_stop=early_stop, seed=seed)
        self.n_target_classes = check_positive_int(n_target_classes, "n_target_classes")

    def run(self, classifier: Classifier, x: Tensor, y: Tensor, ctx: RunContext) -> Tensor:
        best = x.clone()
        score = torch.full((x.shape[0],), -_INF, device=x.device)
        if ctx.target is not None:
            self._restarts(classifier, x, y, ctx.target, ctx.target, ctx, best, score)
            return best
        with torch.no_grad():
            logits = classifier(x)
        ranked = logits.scatter(1, y[:, None], -_INF).argsort(dim=1, descending=True)
        for k in range(min(self.n_target_classes, logits.shape[1] - 1)):
            self._restarts(classifier, x, y, ranked[:, k], None, ctx, best, score)
        return best
