"""DeepFool in L2 and Linf.

Moosavi-Dezfooli, Fawzi & Frossard, "DeepFool: a simple and accurate method to fool
deep neural networks", CVPR 2016. At each step the classifier is linearised around the
current point: for every candidate class k (the ``candidates - 1`` classes with the
highest clean logits besides the true class y) the distance to the linearised boundary
is ``|Z_k - Z_y| / ||grad(Z_k - Z_y)||_q`` (q the dual norm: 2 for L2, 1 for Linf); the
step goes to the closest one (plus 1e-4), the total step is overshot by
``1 + overshoot`` and clipped to the box. A sample stops as soon as it is misclassified
by a margin above ``common.ADV_TOL`` (1e-5 logits; Foolbox's argmax check also stops on
exact ties, where DeepFool can land).
Defaults follow Foolbox 3 (``steps=50, candidates=10, overshoot=0.02``); Foolbox's
'crossentropy' loss gives the same differences (the log-sum-exp cancels) and is not offered.

The gradients of all candidate differences come from one forward pass and ``candidates - 1``
backward passes over the same graph (Foolbox runs a forward pass per candidate too). On
CPU this measured faster than one vmap-batched backward pass (``is_grads_batched=True``)
and than replicating the batch per candidate.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ...classifier import Classifier
from ...threat import Eps
from ...validation import check_nonneg_float, check_positive_int
from ..base import Attack, RunContext
from ..losses import margin_loss
from .common import margin_adversarial, per_sample


def candidate_gradients(logits: Tensor, x: Tensor, classes: Tensor) -> tuple[Tensor, Tensor]:
    """Differences ``Z_k - Z_{classes[:, 0]}`` for k in ``classes[:, 1:]`` and their input gradients.

    ``logits`` must come from ``x`` (requires grad): one forward pass, one backward pass per
    candidate over the same graph. Returns (n, K-1) differences and (n, K-1, ...) gradients.
    """
    picked = logits.gather(1, classes)
    diffs = picked[:, 1:] - picked[:, :1]
    k = diffs.shape[1]
    grads = torch.stack([torch.autograd.grad(diffs[:, j].sum(), x, retain_graph=j < k - 1)[0]
                         for j in range(k)], dim=1)
    return diffs.detach(), grads


class DeepFool(Attack):
    """DeepFool (untargeted), L2 or Linf: the first adversarial point of the linearised walk.

    Args:
        eps: None (default) for minimum norm inside the box; a radius projects the result
            onto the ball and counts success within it. norm: 'l2' or 'linf'.
        steps: maximum iterations. candidates: classes considered (the true class and the
            ``candidates - 1`` others with the highest clean logits), at least 2.
        overshoot: the total perturbation is scaled by ``1 + overshoot``.
        early_stop: skip points already misclassified at the start; every point stops at its
            first adversarial step either way (that is the algorithm).
    """

    name = "deepfool"
    norms = ("l2", "linf")
    requires_eps = False

    def __init__(self, eps: Eps | None = None, norm: object = "l2", *, steps: int = 50, candidates: int = 10,
                 overshoot: float = 0.02, early_stop: bool = True, seed: int | None = None) -> None:
        super().__init__(eps, norm, early_stop=early_stop, seed=seed)
        self.steps = check_positive_int(steps, "steps")
        self.candidates = check_positive_int(candidates, "candidates", minimum=2)
        self.overshoot = check_nonneg_float(overshoot, "overshoot")

    def run(self, classifier: Classifier, x: Tensor, y: Tensor, ctx: RunContext) -> Tensor:
        if ctx.target is not None:
            raise ValueError("target: DeepFool is untargeted; use CarliniWagnerL2, FMN or DDN for a target")
        low, high = ctx.threat.bounds
        adv = x.clone()
        total = torch.zeros_like(x)
        active = torch.arange(x.shape[0], device=x.device)
        classes = None
        steps_run = 0
        for _ in range(self.steps):
            current = adv[active].requires_grad_(True)
            logits = classifier(current)
            if classes is None:  # true class first, then the most likely other classes
                others = logits.detach().scatter(1, y[:, None], float("-inf"))
                k = min(self.candidates, logits.shape[1])
                classes = torch.cat([y[:, None], others.topk(k - 1, dim=1).indices], dim=1)
            keep = ~margin_adversarial(margin_loss(logits.detach(), y[active]))  # not adversarial yet
            if not bool(keep.all()):
                active = active[keep]
                if active.numel() == 0:
                    break
                logits = logits[keep]
            diffs, grads = candidate_gradients(logits, current, classes[active])
            if grads.shape[0] != active.numel():
                grads = grads[keep]
            steps_run += 1
            with torch.no_grad():
                dual = 2 if self.norm == "l2" else 1
                grad_norms = grads.flatten(2).norm(p=dual, dim=2)
                distances = diffs.abs() / (grad_norms + 1e-8)
                closest = distances.argmin(dim=1)
                rows = torch.arange(closest.shape[0], device=x.device)
                distance = distances[rows, closest] + 1e-4
                grad = grads[rows, closest]
                if self.norm == "l2":
                    step = grad * per_sample(distance / (grad.flatten(1).norm(dim=1) + 1e-8), grad)
                else:
                    step = grad.sign() * per_sample(distance, grad)
                total[active] += step
                adv[active] = (x[active] + (1 + self.overshoot) * total[active]).clamp(low, high)
        else:  # steps ran out: the last step was never checked
            with torch.no_grad():
                failed = ~margin_adversarial(margin_loss(classifier(adv[active]), y[active]))
            adv[active[failed]] = x[active[failed]]  # nothing found: x itself
        ctx.steps = max(ctx.steps, steps_run)
        return adv
