"""What a robustness report shows, as plain validated data.

The report layer (:mod:`parry.evaluate.report`, :mod:`parry.evaluate.plots`) renders these
objects and nothing else: whoever produced the numbers (the results store, a notebook) fills
them in. Every class checks its fields on construction and raises a ``ValueError`` (or a
``TypeError`` for a wrong kind of value) naming the bad field, so a report never shows a
silently repaired number.

Accuracies and success rates are fractions in [0, 1]. A success rate or a median norm may be
NaN where it is undefined (no correctly classified point, no successful attack) and is then
shown as "n/a"; accuracies must always be defined.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ..metrics import wilson_interval
from ..threat import NORMS

_HEX = re.compile(r"^[0-9a-f]{8,64}$")
#: Most images a gallery shows (columns of the figure).
MAX_GALLERY_IMAGES = 32


def _set(obj: object, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


def _text(value: object, name: str, *, empty_ok: bool = True) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected a string, got {type(value).__name__}")
    if not empty_ok and not value.strip():
        raise ValueError(f"{name}: must not be empty")
    return value


def _integer(value: object, name: str, *, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {value}")
    return int(value)


def _real(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    return float(value)


def _fraction(value: object, name: str, *, nan_ok: bool = False) -> float:
    """A fraction in [0, 1]; NaN only when ``nan_ok`` (an undefined rate)."""
    out = _real(value, name)
    if math.isnan(out):
        if nan_ok:
            return out
        raise ValueError(f"{name}: is NaN; an accuracy must be a fraction in [0, 1]")
    if not 0.0 <= out <= 1.0:
        raise ValueError(f"{name}: must be a fraction in [0, 1], got {out}")
    return out


def _eps(value: object, name: str = "eps") -> float:
    out = _real(value, name)
    if not (math.isfinite(out) and out >= 0):
        raise ValueError(f"{name}: must be finite and >= 0, got {out}")
    return out


def _norm(value: object, name: str = "norm") -> str:
    norm = _text(value, name)
    if norm not in NORMS:
        raise ValueError(f"{name}: expected one of {NORMS}, got {norm!r}")
    return norm


def _count_ci(accuracy: float, n: int) -> tuple[float, float]:
    """Wilson 95 % interval of an accuracy measured on n points."""
    return wilson_interval(round(accuracy * n), n)


@dataclass(frozen=True)
class ModelRow:
    """One model's headline figures under one threat model.

    ``robust_accuracy`` is the per-point worst case over the headline ensemble named in
    ``ensemble``; ``checkpoint_sha256`` is the checkpoint's SHA-256 (or a prefix of at least
    8 hex digits), None when the model has no checkpoint file.
    """

    name: str
    dataset: str
    clean_accuracy: float
    robust_accuracy: float
    n: int
    seed: int
    norm: str
    eps: float
    ensemble: str
    checkpoint_sha256: str | None = None
    audit: str | None = None
    notes: str = ""

    def __post_init__(self) -> None:
        _text(self.name, "name", empty_ok=False)
        _text(self.dataset, "dataset", empty_ok=False)
        _set(self, "clean_accuracy", _fraction(self.clean_accuracy, "clean_accuracy"))
        _set(self, "robust_accuracy", _fraction(self.robust_accuracy, "robust_accuracy"))
        _set(self, "n", _integer(self.n, "n", minimum=1))
        _set(self, "seed", _integer(self.seed, "seed"))
        _norm(self.norm)
        _set(self, "eps", _eps(self.eps))
        _text(self.ensemble, "ensemble", empty_ok=False)
        if self.checkpoint_sha256 is not None:
            sha = _text(self.checkpoint_sha256, "checkpoint_sha256").lower()
            if not _HEX.match(sha):
                raise ValueError(f"checkpoint_sha256: expected 8 to 64 hex digits, got {self.checkpoint_sha256!r}")
            _set(self, "checkpoint_sha256", sha)
        if self.audit is not None:
            _text(self.audit, "audit")
        _text(self.notes, "notes")

    @property
    def clean_error(self) -> float:
        """1 - clean accuracy."""
        return 1.0 - self.clean_accuracy

    @property
    def robust_error(self) -> float:
        """1 - robust accuracy."""
        return 1.0 - self.robust_accuracy

    @property
    def clean_ci95(self) -> tuple[float, float]:
        """Wilson 95 % interval of the clean accuracy on n points."""
        return _count_ci(self.clean_accuracy, self.n)

    @property
    def robust_ci95(self) -> tuple[float, float]:
        """Wilson 95 % interval of the robust accuracy on n points."""
        return _count_ci(self.robust_accuracy, self.n)


@dataclass(frozen=True)
class AttackRow:
    """One attack's result on one model: ``params`` is its full parameter string."""

    attack: str
    params: str
    norm: str
    eps: float
    robust_accuracy: float
    success_rate: float
    n: int
    median_norms: Mapping[str, float] = field(default_factory=dict)
    model: str = ""

    def __post_init__(self) -> None:
        _text(self.attack, "attack", empty_ok=False)
        _text(self.params, "params")
        _norm(self.norm)
        _set(self, "eps", _eps(self.eps))
        _set(self, "robust_accuracy", _fraction(self.robust_accuracy, "robust_accuracy"))
        _set(self, "success_rate", _fraction(self.success_rate, "success_rate", nan_ok=True))
        _set(self, "n", _integer(self.n, "n", minimum=1))
        if not isinstance(self.median_norms, Mapping):
            raise TypeError(f"median_norms: expected a mapping norm -> value, got {type(self.median_norms).__name__}")
        norms: dict[str, float] = {}
        for key in NORMS:  # a fixed order, whatever the caller's
            if key in self.median_norms:
                value = _real(self.median_norms[key], f"median_norms[{key!r}]")
                if value < 0 or math.isinf(value):
                    raise ValueError(f"median_norms[{key!r}]: must be finite and >= 0 (or NaN), got {value}")
                norms[key] = value
        unknown = sorted(set(self.median_norms) - set(NORMS), key=str)
        if unknown:
            raise ValueError(f"median_norms: unknown norms {unknown}; expected keys among {NORMS}")
        _set(self, "median_norms", norms)
        _text(self.model, "model")

    @property
    def robust_ci95(self) -> tuple[float, float]:
        """Wilson 95 % interval of the robust accuracy on n points."""
        return _count_ci(self.robust_accuracy, self.n)


@dataclass(frozen=True)
class RobustnessCurve:
    """Accuracy against eps for one model and attack in one norm; points sorted by eps."""

    model: str
    attack: str
    norm: str
    points: Sequence[tuple[float, float]]

    def __post_init__(self) -> None:
        _text(self.model, "model", empty_ok=False)
        _text(self.attack, "attack", empty_ok=False)
        _norm(self.norm)
        if isinstance(self.points, (str, bytes)) or not isinstance(self.points, Sequence) or not self.points:
            raise ValueError("points: expected a non-empty sequence of (eps, accuracy) pairs")
        pairs = []
        for i, point in enumerate(self.points):
            if not isinstance(point, Sequence) or len(point) != 2:
                raise ValueError(f"points[{i}]: expected an (eps, accuracy) pair, got {point!r}")
            pairs.append((_eps(point[0], f"points[{i}] eps"), _fraction(point[1], f"points[{i}] accuracy")))
        pairs.sort()
        eps_values = [e for e, _ in pairs]
        if len(set(eps_values)) != len(eps_values):
            raise ValueError(f"points: each eps may appear once, got {eps_values}")
        _set(self, "points", tuple(pairs))

    @property
    def label(self) -> str:
        """"model / attack", the curve's legend entry."""
        return f"{self.model} / {self.attack}"


@dataclass(frozen=True, eq=False)  # array fields: compared by identity
class TransferMatrix:
    """Success rate of adversarial examples crafted on each source model against each target.

    ``success_rate[i][j]`` is for source ``sources[i]`` and target ``targets[j]``; NaN marks a
    pair that was not measured (or has no correctly classified point).
    """

    sources: Sequence[str]
    targets: Sequence[str]
    success_rate: Any
    attack: str
    norm: str
    eps: float

    def __post_init__(self) -> None:
        for name in ("sources", "targets"):
            names = getattr(self, name)
            if isinstance(names, str) or not isinstance(names, Sequence) or not names:
                raise ValueError(f"{name}: expected a non-empty sequence of model names")
            labels = tuple(_text(s, f"{name}[{i}]", empty_ok=False) for i, s in enumerate(names))
            if len(set(labels)) != len(labels):
                raise ValueError(f"{name}: names must be unique, got {list(labels)}")
            _set(self, name, labels)
        rates = _to_numpy(self.success_rate, "success_rate").astype(np.float64)
        shape = (len(self.sources), len(self.targets))
        if rates.shape != shape:
            raise ValueError(f"success_rate: expected shape {shape} (sources x targets), got {rates.shape}")
        finite = rates[~np.isnan(rates)]
        if np.isinf(finite).any() or (finite < 0).any() or (finite > 1).any():
            raise ValueError("success_rate: values must be fractions in [0, 1] (or NaN for not measured)")
        rates.setflags(write=False)
        _set(self, "success_rate", rates)
        _text(self.attack, "attack", empty_ok=False)
        _norm(self.norm)
        _set(self, "eps", _eps(self.eps))


def _to_numpy(value: object, name: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (list, tuple)):
        try:
            return np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name}: could not read as a numeric array ({exc})") from exc
    raise TypeError(f"{name}: expected a numpy array, a torch tensor or nested lists, got {type(value).__name__}")


def _images(value: object, name: str) -> np.ndarray:
    arr = _to_numpy(value, name)
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"{name}: expected floating-point images in [0, 1], got dtype {arr.dtype}")
    if arr.ndim != 4 or arr.shape[1] not in (1, 3):
        raise ValueError(f"{name}: expected shape (N, C, H, W) with C = 1 or 3, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: contains NaN or inf")
    if arr.size and (arr.min() < 0 or arr.max() > 1):
        raise ValueError(f"{name}: values must lie in [0, 1], found [{arr.min():.4g}, {arr.max():.4g}]")
    out = np.array(arr, dtype=np.float32)  # a private copy
    out.setflags(write=False)
    return out


def _labels(value: object, name: str, n: int) -> tuple[int, ...]:
    if isinstance(value, torch.Tensor):
        if value.is_floating_point() or value.dtype == torch.bool:
            raise TypeError(f"{name}: expected integer class indices, got dtype {value.dtype}")
        value = value.detach().cpu().tolist()
    elif isinstance(value, np.ndarray):
        if not np.issubdtype(value.dtype, np.integer):
            raise TypeError(f"{name}: expected integer class indices, got dtype {value.dtype}")
        value = value.tolist()
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise TypeError(f"{name}: expected a sequence of class indices, got {type(value).__name__}")
    if len(value) != n:
        raise ValueError(f"{name}: expected {n} labels to match the images, got {len(value)}")
    return tuple(_integer(v, f"{name}[{i}]", minimum=0) for i, v in enumerate(value))


@dataclass(frozen=True, eq=False)  # array fields: compared by identity
class Gallery:
    """Clean and adversarial images side by side, with true labels and both predictions.

    Images are float arrays or tensors in [0, 1] of shape (N, C, H, W), C = 1 (grey) or 3 (RGB),
    1 <= N <= ``MAX_GALLERY_IMAGES``. They are stored as read-only float32 NumPy copies.
    """

    clean: Any
    adversarial: Any
    labels: Sequence[int]
    clean_pred: Sequence[int]
    adv_pred: Sequence[int]
    class_names: Sequence[str] | None = None
    caption: str = ""

    def __post_init__(self) -> None:
        clean = _images(self.clean, "clean")
        adv = _images(self.adversarial, "adversarial")
        if adv.shape != clean.shape:
            raise ValueError(f"adversarial: shape {adv.shape} differs from clean's {clean.shape}")
        n = clean.shape[0]
        if not 1 <= n <= MAX_GALLERY_IMAGES:
            raise ValueError(f"clean: a gallery shows 1 to {MAX_GALLERY_IMAGES} images, got {n}")
        _set(self, "clean", clean)
        _set(self, "adversarial", adv)
        for name in ("labels", "clean_pred", "adv_pred"):
            _set(self, name, _labels(getattr(self, name), name, n))
        if self.class_names is not None:
            if isinstance(self.class_names, str) or not isinstance(self.class_names, Sequence):
                raise TypeError("class_names: expected a sequence of strings")
            names = tuple(_text(c, f"class_names[{i}]") for i, c in enumerate(self.class_names))
            top = max(self.labels + self.clean_pred + self.adv_pred)
            if top >= len(names):
                raise ValueError(f"class_names: {len(names)} names, but a label or prediction is {top}")
            _set(self, "class_names", names)
        _text(self.caption, "caption")

    def __len__(self) -> int:
        """Number of images."""
        return self.clean.shape[0]

    def class_name(self, index: int) -> str:
        """The display name of class ``index`` (its number when there are no class names)."""
        return self.class_names[index] if self.class_names is not None else str(index)


def _fact(value: object, name: str) -> str:
    if value is None:
        return "n/a"
    if not isinstance(value, (str, int, float)):
        raise TypeError(f"{name}: expected a string, a number or None, got {type(value).__name__}")
    return str(value)


@dataclass(frozen=True)
class Provenance:
    """How the numbers were produced: date, software versions, headline ensemble and its settings.

    ``versions`` maps a package (or another environment fact: python, device, platform) to its
    value, e.g. ``{"parry": "0.1.0", "torch": "2.13.0"}``; ``settings`` holds any further facts
    worth printing (data selection, command line). Values may be strings, numbers or None
    (shown as "n/a"); both are shown in key order. The threat model, n and seed of each number
    travel with its row.
    """

    date: str
    versions: Mapping[str, object]
    ensemble: str = ""
    ensemble_params: str = ""
    settings: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.date, (_dt.date, _dt.datetime)):
            _set(self, "date", self.date.isoformat())
        _text(self.date, "date", empty_ok=False)
        for name in ("versions", "settings"):
            mapping = getattr(self, name)
            if not isinstance(mapping, Mapping):
                raise TypeError(f"{name}: expected a mapping of strings, got {type(mapping).__name__}")
            items = {_text(k, f"{name} key", empty_ok=False): _fact(v, f"{name}[{k!r}]") for k, v in mapping.items()}
            _set(self, name, dict(sorted(items.items())))
        _text(self.ensemble, "ensemble")
        _text(self.ensemble_params, "ensemble_params")


@dataclass(frozen=True)
class ReportData:
    """Everything one report page shows; only ``models`` and ``provenance`` are required."""

    title: str
    models: Sequence[ModelRow]
    provenance: Provenance
    attacks: Sequence[AttackRow] = ()
    curves: Sequence[RobustnessCurve] = ()
    transfer: TransferMatrix | None = None
    gallery: Gallery | None = None

    def __post_init__(self) -> None:
        _text(self.title, "title", empty_ok=False)
        for name, kind, required in (("models", ModelRow, True), ("attacks", AttackRow, False),
                                     ("curves", RobustnessCurve, False)):
            items = getattr(self, name)
            if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
                raise TypeError(f"{name}: expected a sequence of {kind.__name__}")
            if required and not items:
                raise ValueError(f"{name}: need at least one {kind.__name__}")
            for i, item in enumerate(items):
                if not isinstance(item, kind):
                    raise TypeError(f"{name}[{i}]: expected a {kind.__name__}, got {type(item).__name__}")
            _set(self, name, tuple(items))
        if not isinstance(self.provenance, Provenance):
            raise TypeError(f"provenance: expected a Provenance, got {type(self.provenance).__name__}")
        for name, kind in (("transfer", TransferMatrix), ("gallery", Gallery)):
            value = getattr(self, name)
            if value is not None and not isinstance(value, kind):
                raise TypeError(f"{name}: expected a {kind.__name__} or None, got {type(value).__name__}")
