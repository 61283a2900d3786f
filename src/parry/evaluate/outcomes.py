"""Per-sample outcomes as tensors: :class:`OutcomeBatch` is what a unit of work writes,
:class:`Outcomes` one series read back (one run, model, source model, attack, threat, point set)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..attacks.ensemble import EnsembleResult
from ..result import NORM_NAMES, AttackResult

COLUMNS = ("clean_correct", "success", "robust", "clean_pred", "adv_pred", *NORM_NAMES, "queries")


@dataclass
class OutcomeBatch:
    """Outcomes of consecutive points (bool masks, int64 predictions, float norms, optional queries)."""

    clean_correct: Tensor
    success: Tensor
    robust: Tensor
    clean_pred: Tensor
    adv_pred: Tensor
    norms: dict[str, Tensor]
    queries: Tensor | None = None

    def __len__(self) -> int:
        return int(self.clean_correct.shape[0])

    @classmethod
    def from_result(cls, result: AttackResult) -> "OutcomeBatch":
        """The per-sample figures of an attack call."""
        return cls(result.clean_correct, result.success, result.robust, result.clean_pred, result.adv_pred,
                   dict(result.norms), result.sample_queries)

    @classmethod
    def from_stage(cls, ensemble: EnsembleResult, stage: int) -> "OutcomeBatch":
        """The ensemble's worst case after stages ``0..stage`` (AutoAttack's per-stage table).

        Points broken by a later stage still count as robust here, with ``adv = x``.
        """
        r = ensemble.result
        broken = (ensemble.broken_by >= 0) & (ensemble.broken_by <= stage)
        adv_pred = torch.where(broken, r.adv_pred, r.clean_pred)
        robust = adv_pred == r.y
        norms = {k: torch.where(broken, v, torch.zeros_like(v)) for k, v in r.norms.items()}
        return cls(r.clean_correct, ~robust, robust, r.clean_pred, adv_pred, norms, None)

    def rows(self, first_point: int) -> list[tuple[Any, ...]]:
        """One tuple per point: (point, clean_correct, success, robust, clean_pred, adv_pred,
        l0, l1, l2, linf, queries), converted column by column (no per-element syncs)."""
        n = len(self)
        cols: list[list[Any]] = [list(range(first_point, first_point + n))]
        for t in (self.clean_correct, self.success, self.robust, self.clean_pred, self.adv_pred):
            cols.append(t.detach().to("cpu", torch.int64).tolist())
        for name in NORM_NAMES:
            cols.append(self.norms[name].detach().to("cpu", torch.float64).tolist())
        cols.append([None] * n if self.queries is None else self.queries.detach().to("cpu", torch.int64).tolist())
        if any(len(c) != n for c in cols):
            raise ValueError("outcomes: every column must have one value per point")
        return list(zip(*cols))


@dataclass
class Outcomes:
    """One series of per-sample outcomes, ordered by point, read from the store."""

    run_id: int
    run_kind: str
    run_seed: int
    model: str
    model_sha256: str
    model_dataset: str
    source: str
    source_dataset: str
    attack: str
    attack_kind: str
    attack_params: dict[str, Any]
    parent: str | None
    norm: str
    eps: float | None
    point_set_id: int
    points: dict[str, Any]
    point: Tensor
    test_index: Tensor
    label: Tensor
    clean_correct: Tensor
    success: Tensor
    robust: Tensor
    clean_pred: Tensor
    adv_pred: Tensor
    norms: dict[str, Tensor]
    queries: Tensor | None
    time_s: float
    total_queries: int

    @property
    def n(self) -> int:
        return int(self.point.shape[0])

    @property
    def complete(self) -> bool:
        """Whether every point of the point set has an outcome."""
        return self.n == self.points["n"]

    @property
    def min_norm(self) -> bool:
        """A minimum-norm series: no radius, the norms say how far each point is."""
        return self.eps is None

    @property
    def transfer(self) -> bool:
        return self.run_kind == "transfer"
