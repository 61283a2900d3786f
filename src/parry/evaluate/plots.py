"""The report's figures, as base64 PNG data URIs ready to embed in a self-contained page.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot, no global backend change,
nothing is ever shown) under matplotlib's default style, so the user's rc settings do not
leak in and the same input gives the same PNG bytes.
"""

from __future__ import annotations

import base64
import io
from typing import Sequence

import matplotlib
import numpy as np
from matplotlib import style as mpl_style
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ..threat import NORMS
from .report_data import AttackRow, Gallery, RobustnessCurve, TransferMatrix

_BAR = "#5b8db8"
_WORST = "#c0392b"
_MARKERS = "osD^v<>ph"  # 9 markers x 10 colours: distinct styles for 90 lines
_DPI = 100


def _short(text: str, limit: int = 48) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def png_data_uri(fig: Figure) -> str:
    """Render ``fig`` to PNG and return it as a ``data:image/png;base64,...`` URI."""
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _new_figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), dpi=_DPI, layout="constrained")


def plot_robustness_curves(curves: Sequence[RobustnessCurve]) -> str:
    """Accuracy (%) against eps, one line per model/attack, one panel per norm."""
    if not curves or not all(isinstance(c, RobustnessCurve) for c in curves):
        raise ValueError("curves: expected a non-empty sequence of RobustnessCurve")
    norms = [n for n in NORMS if any(c.norm == n for c in curves)]
    with mpl_style.context("default"):
        fig = _new_figure(5.5 * len(norms), 4.2)
        axes = fig.subplots(1, len(norms), squeeze=False)[0]
        for ax, norm in zip(axes, norms):
            for i, curve in enumerate(c for c in curves if c.norm == norm):
                eps, acc = zip(*curve.points)
                ax.plot(eps, [100 * a for a in acc], marker=_MARKERS[i % len(_MARKERS)], color=f"C{i % 10}",
                        label=_short(curve.label))
            ax.set_xlabel(f"eps ({norm})")
            ax.set_ylabel("accuracy (%)")
            ax.set_ylim(-2, 102)
            ax.grid(True, alpha=0.3)
            ax.set_title(f"robustness curve, {norm}")
            ax.legend(fontsize=8, loc="best")
        return png_data_uri(fig)


def _bar_label(row: AttackRow) -> str:
    head = f"{row.model}: {row.attack}" if row.model else row.attack
    return _short(f"{head} ({row.norm} {row.eps:g})", 60)


def plot_attack_bars(rows: Sequence[AttackRow]) -> str:
    """Robust accuracy per attack; the worst case of each (model, norm, eps) group in red."""
    if not rows or not all(isinstance(r, AttackRow) for r in rows):
        raise ValueError("rows: expected a non-empty sequence of AttackRow")
    worst: dict[tuple[str, str, float], float] = {}
    for r in rows:
        key = (r.model, r.norm, r.eps)
        worst[key] = min(worst.get(key, 1.0), r.robust_accuracy)
    colours = [_WORST if r.robust_accuracy == worst[(r.model, r.norm, r.eps)] else _BAR for r in rows]
    values = [100 * r.robust_accuracy for r in rows]
    with mpl_style.context("default"):
        fig = _new_figure(8.0, 1.0 + 0.38 * len(rows))
        ax = fig.subplots()
        ypos = np.arange(len(rows))
        ax.barh(ypos, values, color=colours, height=0.7)
        ax.set_yticks(ypos, [_bar_label(r) for r in rows], fontsize=8)
        ax.invert_yaxis()
        for y, v in zip(ypos, values):
            ax.text(v + 1, y, f"{v:.1f}", va="center", fontsize=8)
        ax.set_xlim(0, 110)
        ax.set_xlabel("robust accuracy (%)")
        ax.grid(True, axis="x", alpha=0.3)
        fig.legend(handles=[Patch(color=_WORST, label="worst case"), Patch(color=_BAR, label="other attacks")],
                   fontsize=8, loc="outside upper right", ncols=2)
        return png_data_uri(fig)


def plot_transfer_heatmap(matrix: TransferMatrix) -> str:
    """Transfer success rate (%) from each source (rows) to each target (columns), annotated."""
    if not isinstance(matrix, TransferMatrix):
        raise ValueError(f"matrix: expected a TransferMatrix, got {type(matrix).__name__}")
    rates = matrix.success_rate
    rows, cols = rates.shape
    with mpl_style.context("default"):
        fig = _new_figure(2.0 + 1.1 * cols, 1.6 + 0.6 * rows)
        ax = fig.subplots()
        cmap = matplotlib.colormaps["Reds"].with_extremes(bad="#dddddd")
        image = ax.imshow(np.ma.masked_invalid(100 * rates), cmap=cmap, vmin=0, vmax=100, aspect="auto")
        for i in range(rows):
            for j in range(cols):
                value = rates[i, j]
                text = "n/a" if np.isnan(value) else f"{100 * value:.1f}"
                colour = "white" if not np.isnan(value) and value > 0.6 else "black"
                ax.text(j, i, text, ha="center", va="center", fontsize=9, color=colour)
        ax.set_xticks(range(cols), [_short(t, 20) for t in matrix.targets], rotation=30, ha="right", fontsize=8)
        ax.set_yticks(range(rows), [_short(s, 20) for s in matrix.sources], fontsize=8)
        ax.set_xlabel("target model")
        ax.set_ylabel("source model")
        ax.set_title(_short(f"transfer success (%): {matrix.attack}, {matrix.norm} eps {matrix.eps:g}", 70),
                     fontsize=9)
        fig.colorbar(image, ax=ax, label="success rate (%)")
        return png_data_uri(fig)


def _show(ax, image: np.ndarray) -> None:
    if image.shape[0] == 1:
        ax.imshow(image[0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(image.transpose(1, 2, 0), interpolation="nearest")


def _show_delta(ax, delta: np.ndarray) -> float:
    """Show a perturbation stretched to full contrast (zero = mid grey/white); return its Linf."""
    scale = float(np.abs(delta).max())
    if delta.shape[0] == 1:
        ax.imshow(delta[0], cmap="RdBu_r", vmin=-max(scale, 1e-12), vmax=max(scale, 1e-12), interpolation="nearest")
    else:
        stretched = 0.5 + delta / (2 * scale) if scale > 0 else np.full_like(delta, 0.5)
        ax.imshow(stretched.transpose(1, 2, 0), interpolation="nearest")
    return scale


def plot_gallery(gallery: Gallery) -> str:
    """Three rows per image column: clean, adversarial, perturbation amplified to full contrast."""
    if not isinstance(gallery, Gallery):
        raise ValueError(f"gallery: expected a Gallery, got {type(gallery).__name__}")
    n = len(gallery)
    with mpl_style.context("default"):
        fig = _new_figure(max(1.45 * n, 4.0), 5.4)
        axes = fig.subplots(3, n, squeeze=False)
        for k in range(n):
            true = gallery.labels[k]
            clean_ok = gallery.clean_pred[k] == true
            adv_ok = gallery.adv_pred[k] == true
            _show(axes[0, k], gallery.clean[k])
            axes[0, k].set_title(f"true {_short(gallery.class_name(true), 12)}\n"
                                 f"pred {_short(gallery.class_name(gallery.clean_pred[k]), 12)}",
                                 fontsize=8, color="black" if clean_ok else _WORST)
            _show(axes[1, k], gallery.adversarial[k])
            axes[1, k].set_title(f"pred {_short(gallery.class_name(gallery.adv_pred[k]), 12)}",
                                 fontsize=8, color="black" if adv_ok else _WORST)
            linf = _show_delta(axes[2, k], gallery.adversarial[k] - gallery.clean[k])
            axes[2, k].set_title(f"Linf {linf:.3g}", fontsize=8)
            for ax in axes[:, k]:
                ax.set_xticks([])
                ax.set_yticks([])
        for ax, name in zip(axes[:, 0], ("clean", "adversarial", "perturbation\n(full contrast)")):
            ax.set_ylabel(name, fontsize=8)
        return png_data_uri(fig)
