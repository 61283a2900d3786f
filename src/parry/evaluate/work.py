"""Plumbing shared by the runners: the store to write to, the points of each data set, and
seeded execution of one unit of work."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, Iterator, Mapping, Sequence

import torch

from ..data.catalog import catalogue_name
from .canonical import sha256_text
from .model_spec import ModelSpec
from .points import EvalPoints
from .store import ResultsStore


def unit_seed(run_seed: int, *parts: Any) -> int:
    """A 63-bit seed from the run seed and a unit's identity, the same in every process."""
    return int(sha256_text("|".join(map(str, (run_seed, *parts))))[:15], 16)


@contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Run the body with torch's global generators seeded, restoring the caller's state after."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


@contextmanager
def open_store(store: ResultsStore | str | os.PathLike) -> Iterator[ResultsStore]:
    """The given store, or one opened at a path (and closed afterwards)."""
    if isinstance(store, ResultsStore):
        yield store
        return
    opened = ResultsStore(store)
    try:
        yield opened
    finally:
        opened.close()


def check_models(models: Sequence[ModelSpec], name: str = "models") -> list[ModelSpec]:
    """A non-empty list of ModelSpec with unique names."""
    if isinstance(models, ModelSpec) or len(models) == 0:
        raise ValueError(f"{name}: expected a non-empty list of ModelSpec")
    models = list(models)
    if not all(isinstance(m, ModelSpec) for m in models):
        raise ValueError(f"{name}: expected ModelSpec entries (see ModelSpec.from_checkpoint)")
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ValueError(f"{name}: model names must be unique, got {names}")
    return models


def points_by_dataset(points: EvalPoints | Sequence[EvalPoints], datasets: set[str]) -> dict[str, EvalPoints]:
    """One point set per data set, covering ``datasets`` (the models' data sets); points drawn from
    a copy (the CIFAR-10 JPEG copy) serve the models of the data set it stands for."""
    items = [points] if isinstance(points, EvalPoints) else list(points)
    if not items or not all(isinstance(p, EvalPoints) for p in items):
        raise ValueError("points: expected EvalPoints or a list of them")
    by_name: dict[str, EvalPoints] = {}
    for p in items:
        name = catalogue_name(p.dataset)
        if name in by_name:
            raise ValueError(f"points: two point sets for the data set {name!r}")
        by_name[name] = p
    missing = sorted(datasets - set(by_name))
    if missing:
        raise ValueError(f"points: no evaluation points for the data set(s) {missing} of the models")
    return by_name


def on_device(points: EvalPoints, device: torch.device, cache: dict[tuple[str, str], EvalPoints]) -> EvalPoints:
    """``points`` on ``device``, moved once."""
    key = (points.dataset, str(device))
    if key not in cache:
        cache[key] = points.to(device)
    return cache[key]


def model_ids(store: ResultsStore, models: Sequence[ModelSpec]) -> dict[str, int]:
    """Register the models; their store ids by name."""
    return {m.name: store.add_model(**m.record()) for m in models}


def describe_points(points: Mapping[str, EvalPoints]) -> list[dict[str, Any]]:
    return [points[k].describe() for k in sorted(points)]
