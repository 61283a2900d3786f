"""Canonical JSON: one text per value (sorted keys, no spaces), so equal settings hash equally."""

from __future__ import annotations

import hashlib
import json
import math
import os
from typing import Any

from torch import Tensor


def plain(value: Any) -> Any:
    """``value`` as JSON-ready Python: tuples become lists, tensors lists, non-finite floats
    the strings 'inf', '-inf' and 'nan', paths strings, attacks ``{class, params}``."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Tensor):
        return plain(value.detach().cpu().tolist())
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    params = getattr(value, "params", None)
    if callable(params):  # an Attack given as an option (e.g. FMN's init_attack)
        return {"class": type(value).__name__, "params": plain(params())}
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys of :func:`plain` ``(value)``."""
    return json.dumps(plain(value), sort_keys=True, separators=(",", ":"), allow_nan=False)


def sha256_text(text: str) -> str:
    """Hex SHA-256 of ``text`` encoded as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
