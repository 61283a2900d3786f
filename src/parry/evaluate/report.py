"""Render a robustness report: a self-contained HTML page, a Markdown summary and a leaderboard.

This is a pure rendering layer over :mod:`parry.evaluate.report_data`: it takes plain,
validated data and returns text; it never runs a model nor reads a results store. Pages are
self-contained (inline CSS, figures as PNG data URIs, a Content-Security-Policy that forbids
scripts and external resources). Jinja2 autoescaping is on, so model names, notes and attack
labels are HTML-escaped; in Markdown they are HTML-escaped too, with ``|`` and the Markdown
punctuation backslash-escaped, so a table cell can neither break its table nor inject markup.
The same data always gives the same text.
"""

from __future__ import annotations

import html
import math
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import jinja2
from markupsafe import Markup

from .. import __version__
from ..threat import NORMS
from .report_data import ModelRow, ReportData

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def _pct(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:.2f}"


def _ci(interval: tuple[float, float]) -> str:
    return f"{_pct(interval[0])}-{_pct(interval[1])}"


def _num(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.4g}"


def _sha(value: str | None) -> str:
    return "n/a" if value is None else value[:12]


def _audit_class(verdict: str) -> str:
    word = verdict.strip().lower().split(" ")[0].rstrip(":,.;")
    return {"pass": "audit-pass", "passed": "audit-pass", "ok": "audit-pass", "fail": "audit-fail",
            "failed": "audit-fail", "warn": "audit-warn", "warning": "audit-warn"}.get(word, "")


def markdown_escape(text: object) -> Markup:
    """``text`` made inert in a Markdown table cell: HTML-escaped, Markdown punctuation and ``|``
    backslash-escaped, line breaks turned into spaces."""
    flat = " ".join(str(text).splitlines())
    return Markup(_MD_SPECIAL.sub(r"\\\1", html.escape(flat, quote=False)))


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("parry.evaluate", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True)
    env.filters.update(pct=_pct, ci=_ci, num=_num, sha=_sha, g=lambda v: f"{v:g}", audit_class=_audit_class,
                       md=markdown_escape)
    env.globals["parry_version"] = __version__
    return env


def _render(template: str, **context: Any) -> str:
    return _environment().get_template(template).render(**context)


def _check_data(data: object) -> ReportData:
    if not isinstance(data, ReportData):
        raise TypeError(f"data: expected a ReportData, got {type(data).__name__}")
    return data


def _attack_context(data: ReportData) -> dict[str, Any]:
    """Median-norm columns present in any row, and the rows that are the worst case of their group."""
    norm_keys = [k for k in NORMS if any(k in a.median_norms for a in data.attacks)]
    lowest: dict[tuple[str, str, float], float] = {}
    for a in data.attacks:
        key = (a.model, a.norm, a.eps)
        lowest[key] = min(lowest.get(key, 1.0), a.robust_accuracy)
    worst = {i for i, a in enumerate(data.attacks) if a.robust_accuracy == lowest[(a.model, a.norm, a.eps)]}
    return {"norm_keys": norm_keys, "worst": worst}


def render_html(data: ReportData) -> str:
    """The full report as one self-contained HTML page (tables, figures, gallery, provenance)."""
    from . import plots  # matplotlib loads only when figures are drawn

    data = _check_data(data)
    figures = {
        "attacks": plots.plot_attack_bars(data.attacks) if data.attacks else None,
        "curves": plots.plot_robustness_curves(data.curves) if data.curves else None,
        "transfer": plots.plot_transfer_heatmap(data.transfer) if data.transfer is not None else None,
        "gallery": plots.plot_gallery(data.gallery) if data.gallery is not None else None,
    }
    return _render("report.html.j2", data=data, figures=figures, page_title=data.title, **_attack_context(data))


def render_markdown(data: ReportData) -> str:
    """A Markdown summary with the same tables as the HTML page (figures stay in the HTML)."""
    data = _check_data(data)
    return _render("summary.md.j2", data=data, **_attack_context(data))


def _check_rows(rows: object) -> tuple[ModelRow, ...]:
    if isinstance(rows, (str, bytes)) or not isinstance(rows, Sequence) or not rows:
        raise ValueError("rows: expected a non-empty sequence of ModelRow")
    for i, row in enumerate(rows):
        if not isinstance(row, ModelRow):
            raise TypeError(f"rows[{i}]: expected a ModelRow, got {type(row).__name__}")
    return tuple(rows)


def render_leaderboard(rows: Sequence[ModelRow], *, title: str = "Parry leaderboard", date: str = "") -> str:
    """An HTML leaderboard over all ``rows``: one table per (dataset, norm, eps), best robust accuracy first.

    Ties in robust accuracy are broken by clean accuracy, then by name.
    """
    rows = _check_rows(rows)
    if not isinstance(title, str) or not title.strip():
        raise ValueError("title: expected a non-empty string")
    if not isinstance(date, str):
        raise TypeError(f"date: expected a string, got {type(date).__name__}")
    groups: dict[tuple[str, str, float], list[ModelRow]] = {}
    for row in rows:
        groups.setdefault((row.dataset, row.norm, row.eps), []).append(row)
    boards = [(dataset, norm, eps, sorted(group, key=lambda r: (-r.robust_accuracy, -r.clean_accuracy, r.name)))
              for (dataset, norm, eps), group in sorted(groups.items(), key=lambda kv: kv[0])]
    return _render("leaderboard.html.j2", boards=boards, title=title, date=date, n_models=len(rows),
                   page_title=title)


@dataclass(frozen=True)
class ReportPaths:
    """Files written by :func:`write_report`."""

    index: Path
    summary: Path
    leaderboard: Path


def write_report(data: ReportData, out_dir: str | os.PathLike[str],
                 leaderboard_rows: Sequence[ModelRow] | None = None) -> ReportPaths:
    """Write ``index.html``, ``summary.md`` and ``leaderboard.html`` into ``out_dir`` (created if needed).

    The leaderboard covers ``leaderboard_rows`` (for example every model in a results store),
    by default the report's own models.
    """
    data = _check_data(data)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out_dir: {out} exists and is not a directory")
    board = render_leaderboard(data.models if leaderboard_rows is None else leaderboard_rows,
                               date=data.provenance.date)
    pages = {"index.html": render_html(data), "summary.md": render_markdown(data), "leaderboard.html": board}
    out.mkdir(parents=True, exist_ok=True)
    for name, text in pages.items():
        (out / name).write_text(text, encoding="utf-8")
    return ReportPaths(index=out / "index.html", summary=out / "summary.md", leaderboard=out / "leaderboard.html")
