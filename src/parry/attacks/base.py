"""The Attack template: a final ``__call__`` (and ``generate``) over ``run()``.

Following Foolbox 3 (Rauber et al. 2020), validation, eval mode with frozen
parameters, the early-exit mask, projection onto the threat model, success checks
and timing are handled once here; a subclass only implements :meth:`Attack.run`.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..classifier import Classifier, as_classifier
from ..result import AttackResult
from ..threat import Eps, ThreatModel, canonical_norm, check_eps
from ..validation import check_inputs, check_labels, check_logits


def is_adversarial(logits: Tensor, y: Tensor, target: Tensor | None) -> Tensor:
    """Per sample: untargeted, the prediction differs from ``y``; targeted, it equals ``target``."""
    pred = logits.argmax(dim=1)
    return pred == target if target is not None else pred != y


@dataclass
class RunContext:
    """What ``run()`` gets besides the model and the points it must attack."""

    threat: ThreatModel
    target: Tensor | None
    early_stop: bool
    generator: torch.Generator | None
    steps: int = 0  # set by run(): iterations performed
    sample_queries: Tensor | None = None  # set by run() of query-counting attacks: per-sample model queries


class Attack(ABC):
    """Base class of evasion attacks.

    Configure once, call many times: ``result = PGD(eps=0.3, steps=40)(model, x, y)``.

    Args:
        eps: radius of the threat model in input space (float, or one per sample). Minimum-norm
            attacks (``requires_eps = False``) accept None: no bound but the input box.
        norm: 'linf', 'l2' or 'l1' (restricted by the subclass's ``norms``).
        early_stop: evaluation mode (default): points already adversarial are left
            alone and a point is frozen as soon as it is adversarial (AutoAttack's rule).
            Set False for fixed-budget generation (training), which keeps every sample.
        seed: seed of the attack's own random generator (random starts); None draws from
            torch's global generator.
    """

    name: ClassVar[str] = "attack"
    norms: ClassVar[tuple[str, ...]] = ("linf", "l2", "l1")
    requires_eps: ClassVar[bool] = True

    def __init__(self, eps: Eps | None, norm: object = "linf", *, early_stop: bool = True,
                 seed: int | None = None) -> None:
        self.norm = canonical_norm(norm)
        if self.norm not in self.norms:
            raise ValueError(f"norm: {type(self).__name__} supports {self.norms}, got {norm!r}")
        if eps is None and self.requires_eps:
            raise ValueError(f"eps: {type(self).__name__} needs a radius")
        self.eps = float("inf") if eps is None else check_eps(eps)
        if not isinstance(early_stop, bool):
            raise TypeError(f"early_stop: expected a bool, got {early_stop!r}")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"seed: expected an int or None, got {seed!r}")
        self.early_stop = early_stop
        self.seed = seed

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for final_method in ("__call__", "generate"):
            if final_method in cls.__dict__:
                raise TypeError(f"{cls.__name__} must not override {final_method}; implement run()")

    def params(self) -> dict[str, Any]:
        """The attack's configuration, JSON-friendly (reported with every figure)."""
        out: dict[str, Any] = {}
        for key, value in vars(self).items():
            if key.startswith("_"):
                continue
            if isinstance(value, Tensor):
                value = [float(value.min()), float(value.max())] if value.numel() else []
            out[key] = value
        return out

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"

    @abstractmethod
    def run(self, classifier: Classifier, x: Tensor, y: Tensor, ctx: RunContext) -> Tensor:
        """Return adversarial candidates for ``x`` (the points still to attack).

        The model is in eval mode with frozen parameters; inputs are validated. The
        returned tensor is projected onto ``ctx.threat`` by the caller.
        """

    # ------------------------------------------------------------------ templates
    def __call__(self, model: nn.Module, x: Tensor, y: Tensor, *,
                 target: Tensor | None = None) -> AttackResult:
        """Attack ``x`` (labels ``y``; ``target`` for a targeted attack) and report."""
        clf = as_classifier(model)
        start = time.perf_counter()
        queries_before = clf.queries
        x, y, target, threat = self._validate(clf, x, y, target)
        with clf.attack_mode(), torch.no_grad():
            clean_logits = check_logits(clf(x), x.shape[0], clf.num_classes)
            self._check_label_range(clean_logits.shape[1], y, target)
        clean_pred = clean_logits.argmax(dim=1)
        todo = ~is_adversarial(clean_logits, y, target) if self.early_stop else torch.ones_like(y, dtype=torch.bool)
        index = todo.nonzero().squeeze(1)
        adv = x.clone()
        ctx = RunContext(threat.subset(index), None if target is None else target[index],
                         self.early_stop, self._generator(x.device))
        if index.numel() > 0:
            with clf.attack_mode():
                adv[index] = self.run(clf, x[index], y[index], ctx).detach().to(x.dtype)
        adv = self._finalise(adv, x, threat)
        with clf.attack_mode(), torch.no_grad():
            adv_pred = clf(adv).argmax(dim=1)
        success = adv_pred == target if target is not None else adv_pred != y
        sample_queries = None
        if ctx.sample_queries is not None:
            sample_queries = torch.zeros(x.shape[0], dtype=torch.int64, device=x.device)
            sample_queries[index] = ctx.sample_queries.to(device=x.device, dtype=torch.int64)
        if x.device.type == "cuda":
            torch.cuda.synchronize(x.device)
        return AttackResult(
            adv=adv, y=y, target=target, clean_pred=clean_pred, adv_pred=adv_pred, success=success,
            norms=AttackResult.perturbation_norms(adv, x), threat=threat, attack=type(self).__name__,
            params=self.params(), queries=clf.queries - queries_before, steps=ctx.steps,
            time_s=time.perf_counter() - start, sample_queries=sample_queries,
        )

    def generate(self, model: nn.Module, x: Tensor, y: Tensor, *,
                 target: Tensor | None = None) -> Tensor:
        """Adversarial inputs only, every sample attacked for the full budget (for training).

        No clean or final forward pass and no early exit: the cheapest path, used by
        adversarial training. Inputs are validated as in ``__call__``.
        """
        clf = as_classifier(model)
        x, y, target, threat = self._validate(clf, x, y, target)
        if clf.num_classes is not None:
            self._check_label_range(clf.num_classes, y, target)
        ctx = RunContext(threat, target, False, self._generator(x.device))
        with clf.attack_mode():
            adv = self.run(clf, x, y, ctx).detach().to(x.dtype)
        return self._finalise(adv, x, threat)

    # ------------------------------------------------------------------ helpers
    def _validate(self, clf: Classifier, x: Tensor, y: Tensor, target: Tensor | None):
        check_inputs(x, clf.bounds, clf.input_shape)
        device = clf.device
        if x.device != device:
            raise ValueError(f"x: is on {x.device} but the model's parameters are on {device}")
        y = check_labels(y, x.shape[0], x.device, "y", clf.num_classes)
        if target is not None:
            target = check_labels(target, x.shape[0], x.device, "target", clf.num_classes)
            if (target == y).any():
                raise ValueError("target: equals the true label y for some samples; "
                                 "a targeted attack needs target != y")
        threat = ThreatModel(self.norm, self.eps, clf.bounds)
        threat.eps_tensor(x)  # raises when a per-sample eps does not match the batch
        return x, y, target, threat

    @staticmethod
    def _check_label_range(num_classes: int, y: Tensor, target: Tensor | None) -> None:
        for name, labels in (("y", y), ("target", target)):
            if labels is not None and (labels >= num_classes).any():
                raise ValueError(f"{name}: labels must lie in [0, {num_classes - 1}] for a model "
                                 f"with {num_classes} outputs, found {int(labels.max())}")

    def _generator(self, device: torch.device) -> torch.Generator | None:
        if self.seed is None:
            return None
        return torch.Generator(device=device).manual_seed(self.seed)

    @staticmethod
    def _finalise(adv: Tensor, x: Tensor, threat: ThreatModel) -> Tensor:
        if not torch.isfinite(adv).all():
            raise RuntimeError("attack produced NaN or inf; this is a bug in the attack")
        return threat.project(adv, x)
