"""Markdown rendering of the tables (lists of dicts) and of the transferability matrix.

Columns whose name ends in ``accuracy`` or ``rate`` are shown in per cent, their ``_ci95``
companions as a per-cent range; NaN shows as 'n/a', a missing eps as 'min-norm'.
"""

from __future__ import annotations

import json
import math
from typing import Any, Sequence

from torch import Tensor

_PERCENT = ("accuracy", "rate")
#: Columns left out by default: long or repeated in other columns.
HIDDEN = ("params", "model_sha256")


def _percent(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:.1f}"


def format_cell(column: str, value: Any) -> str:
    """One cell as text."""
    if value is None:
        return "min-norm" if column == "eps" else "-"
    if column.endswith("_ci95"):
        lo, hi = value
        return f"{_percent(lo)}-{_percent(hi)}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if column.endswith(_PERCENT):
            return _percent(value)
        return "n/a" if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, (list, dict)):
        text = ", ".join(map(str, value)) if isinstance(value, list) else json.dumps(value, sort_keys=True)
        return text.replace("|", "\\|")
    return str(value).replace("|", "\\|")


def _header(column: str) -> str:
    if column.endswith("_ci95"):
        return "95% CI"
    return column.replace("_", " ") + (" %" if column.endswith(_PERCENT) else "")


def to_markdown(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A Markdown table of ``rows``; ``columns`` default to the first row's keys but :data:`HIDDEN`."""
    if not rows:
        return "(no rows)"
    columns = [c for c in rows[0] if c not in HIDDEN] if columns is None else list(columns)
    unknown = [c for c in columns if c not in rows[0]]
    if unknown:
        raise ValueError(f"columns: not in the rows: {unknown}")
    lines = ["| " + " | ".join(_header(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(format_cell(c, row.get(c)) for c in columns) + " |")
    return "\n".join(lines)


def matrix_to_markdown(sources: Sequence[str], targets: Sequence[str], matrix: Tensor) -> str:
    """The transferability matrix: one row per source, one column per target, success rates in %."""
    if tuple(matrix.shape) != (len(sources), len(targets)):
        raise ValueError(f"matrix: shape {tuple(matrix.shape)} does not match {len(sources)} sources "
                         f"x {len(targets)} targets")
    lines = ["| source \\ target | " + " | ".join(targets) + " |", "|" + "---|" * (len(targets) + 1)]
    for i, source in enumerate(sources):
        cells = [_percent(float(v)) for v in matrix[i].tolist()]
        lines.append(f"| {source} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
