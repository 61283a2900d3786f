"""AttackResult: what one attack call produced, with the bookkeeping to report it honestly."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from .threat import ThreatModel, flat_norm

NORM_NAMES = ("l0", "l1", "l2", "linf")


@dataclass
class AttackResult:
    """The outcome of ``attack(model, x, y)``.

    Attributes:
        adv: adversarial inputs, inside the threat model (projected and clipped).
        y: true labels; ``target``: target labels for targeted attacks, else None.
        clean_pred, adv_pred: predicted classes before and after the attack.
        success: per sample, whether the attack's goal holds at ``adv`` (untargeted:
            ``adv_pred != y``; targeted: ``adv_pred == target``). Points the model already
            misclassifies count as successes of an untargeted attack with ``adv = x``.
        norms: per-sample L0/L1/L2/Linf norms of ``adv - x``.
        threat: the threat model; ``attack``/``params``: the attack's name and parameters.
        queries: images passed through the model during the call (forward passes x batch).
        steps: iterations the attack ran; ``time_s``: wall time of the call in seconds.
        sample_queries: per-sample model queries, for attacks that count them (black box).
    """

    adv: Tensor
    y: Tensor
    target: Tensor | None
    clean_pred: Tensor
    adv_pred: Tensor
    success: Tensor
    norms: dict[str, Tensor]
    threat: ThreatModel
    attack: str
    params: dict[str, Any] = field(default_factory=dict)
    queries: int = 0
    steps: int = 0
    time_s: float = 0.0
    sample_queries: Tensor | None = None

    @staticmethod
    def perturbation_norms(adv: Tensor, x: Tensor) -> dict[str, Tensor]:
        """Per-sample L0, L1, L2 and Linf norms of ``adv - x``."""
        delta = (adv - x).detach()
        return {name: flat_norm(delta, name) for name in NORM_NAMES}

    @property
    def targeted(self) -> bool:
        return self.target is not None

    @property
    def clean_correct(self) -> Tensor:
        return self.clean_pred == self.y

    @property
    def robust(self) -> Tensor:
        """Per sample: still classified correctly after the attack."""
        return self.adv_pred == self.y

    def __len__(self) -> int:
        return self.y.shape[0]

    def summary(self) -> dict[str, Any]:
        """Aggregate figures (see :mod:`parry.metrics` for the definitions)."""
        from . import metrics

        return metrics.summarize(self)

    @classmethod
    def concat(cls, results: "list[AttackResult]") -> "AttackResult":
        """Join results of the same attack on consecutive batches into one."""
        if not results:
            raise ValueError("results: need at least one AttackResult")
        first = results[0]
        cat = lambda name: torch.cat([getattr(r, name) for r in results])  # noqa: E731
        eps = first.threat.eps
        if isinstance(eps, Tensor):
            eps = torch.cat([r.threat.eps for r in results])
        return cls(
            adv=cat("adv"), y=cat("y"), target=None if first.target is None else cat("target"),
            clean_pred=cat("clean_pred"), adv_pred=cat("adv_pred"), success=cat("success"),
            norms={k: torch.cat([r.norms[k] for r in results]) for k in first.norms},
            threat=ThreatModel(first.threat.norm, eps, first.threat.bounds), attack=first.attack,
            params=dict(first.params), queries=sum(r.queries for r in results),
            steps=max(r.steps for r in results), time_s=sum(r.time_s for r in results),
            sample_queries=None if first.sample_queries is None else cat("sample_queries"),
        )

    def to(self, device: torch.device | str) -> "AttackResult":
        """A copy with every tensor moved to ``device``."""
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return AttackResult(
            adv=move(self.adv), y=move(self.y), target=move(self.target),
            clean_pred=move(self.clean_pred), adv_pred=move(self.adv_pred),
            success=move(self.success), norms={k: move(v) for k, v in self.norms.items()},
            threat=self.threat, attack=self.attack, params=dict(self.params),
            queries=self.queries, steps=self.steps, time_s=self.time_s,
            sample_queries=move(self.sample_queries),
        )
