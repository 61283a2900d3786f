"""A report from the results store: :func:`build_report` fills a :class:`ReportData` for
:func:`~parry.evaluate.report.write_report`; :func:`leaderboard_rows` ranks every model stored.

Every number shown is read from the store (the tables of :mod:`parry.evaluate.tables`); the
gallery images are the only recomputation (:mod:`parry.evaluate.report_gallery`), and the page
says so. The headline robust accuracy is the AutoAttack-standard worst case where the store has
one, otherwise the worst case of the stored attacks, labelled as such
(:mod:`parry.evaluate.report_rows`).
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import torch

from .report import ReportPaths, write_report
from .report_data import ModelRow, Provenance, ReportData
from .report_gallery import DataLoader, build_gallery
from .report_rows import (HEADLINE, Headline, attack_rows, curves, model_rows, params_text, points_note,
                          stored_series, transfer)
from .store import ResultsStore
from .tables import Runs

#: Images in a report's gallery by default.
GALLERY_POINTS = 8
HEADLINE_RULE = (f"the worst case of {HEADLINE} where the store has it at the model's threat model; otherwise the "
                 "per-point worst case of the stored attacks, labelled so in the ensemble column (not a headline)")


def _run_ids(store: ResultsStore, runs: Runs) -> list[int] | None:
    if runs is None:
        return None
    ids = [runs] if isinstance(runs, int) else list(runs)
    if not ids:
        raise ValueError("runs: expected run ids or None (every run)")
    for i in ids:
        store.run(i)  # raises 'run_id: no run ...'
    return ids


def leaderboard_rows(store: ResultsStore, runs: Runs = None) -> list[ModelRow]:
    """A model row for every model (and threat model and point set) in the store, sorted as the
    leaderboard shows them: data set, norm, eps, then the AutoAttack-standard headlines before the
    (labelled) fallback rows, so an FGSM-only evaluation never outranks a headline; then best
    robust accuracy, clean accuracy, name."""
    rows = [h.row for h in model_rows(store, _run_ids(store, runs))]
    return sorted(rows, key=lambda r: (r.dataset, r.norm, r.eps, r.ensemble != HEADLINE, -r.robust_accuracy,
                                       -r.clean_accuracy, r.name))


def _gallery_headline(headlines: Sequence[Headline], model: str | None) -> Headline:
    """The model's row to draw: AutoAttack-standard first, then the first norm, the largest eps.
    Without ``model``, the first model with a checkpoint (else the first model)."""
    if model is None:
        with_file = [h for h in headlines if h.checkpoint is not None]
        model = (with_file or list(headlines))[0].series.model
    mine = [h for h in headlines if h.series.model == model]
    if not mine:
        raise ValueError(f"gallery_model: no model row for {model!r}; models: "
                         f"{sorted({h.series.model for h in headlines})}")
    first_norm = mine[0].row.norm
    return min(mine, key=lambda h: (h.row.ensemble != HEADLINE, h.row.norm != first_norm, -h.row.eps))


def _versions(infos: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Each environment fact; where runs differ, every value with its runs."""
    keys = sorted({k for info in infos for k in info["environment"]})
    out = {}
    for key in keys:
        values: dict[str, list[int]] = {}
        for info in infos:
            values.setdefault(str(info["environment"].get(key)), []).append(info["id"])
        out[key] = next(iter(values)) if len(values) == 1 else "; ".join(
            f"{v} (run {', '.join(map(str, ids))})" for v, ids in values.items())
    return out


def _provenance(store: ResultsStore, run_ids: list[int], headlines: Sequence[Headline],
                notes: dict[str, str]) -> Provenance:
    infos = [store.run(i) for i in run_ids]
    date = max(info["finished"] or info["created"] for info in infos)
    aa = [h.series for h in headlines if h.row.ensemble == HEADLINE]
    settings = {"runs": "; ".join(f"{i['id']} ({i['kind']}, {i['status']}, seed {i['seed']}, created {i['created']})"
                                  for i in infos),
                "store": str(store.path), "headline robust accuracy": HEADLINE_RULE,
                "recomputed": "only the gallery images; every number is read from the results store",
                "points": "; ".join(sorted({points_note(h.series)[len("points: "):] for h in headlines})),
                **notes}
    return Provenance(date=date, versions=_versions(infos),
                      ensemble=HEADLINE if aa else "none (no autoattack-standard run; see each model's ensemble)",
                      ensemble_params=params_text(aa[0].attack_params) if aa else "", settings=settings)


def build_report(store: ResultsStore, runs: Runs = None, *, models: Sequence[str] | None = None,
                 title: str | None = None, gallery_model: str | None = None, gallery_points: int = GALLERY_POINTS,
                 data: DataLoader | None = None, device: torch.device | str = "cpu") -> ReportData:
    """The report of ``runs`` (every run when None), restricted to ``models`` when given.

    Args:
        store: the results store.
        runs: run ids (an int, a list, or None for every run).
        models: model names to report on (default: every model of the runs).
        title: the page title (default: names the models).
        gallery_model: the model whose gallery to draw (default: the first with a checkpoint).
        gallery_points: images in the gallery (0: no gallery).
        data: loads a test split, ``(dataset, split) -> ArrayDataset`` (default :func:`parry.data.load`).
        device: where the gallery re-runs the attack.
    Raises ValueError for an unknown run or model, or when nothing was evaluated at a fixed radius.
    """
    run_ids = _run_ids(store, runs)
    if isinstance(models, str):
        models = [models]
    headlines = model_rows(store, run_ids, models)
    if not headlines:
        what = f"models {list(models)}" if models else "any model"
        raise ValueError(f"runs: no fixed-radius evaluation of {what} in {store.path}"
                         + (f" (runs {run_ids})" if run_ids else ""))
    if models:
        missing = sorted(set(models) - {h.series.model for h in headlines})
        if missing:
            raise ValueError(f"models: no fixed-radius evaluation of {missing} in {store.path}")
    if isinstance(gallery_points, bool) or not isinstance(gallery_points, int) or gallery_points < 0:
        raise ValueError(f"gallery_points: expected an int >= 0, got {gallery_points!r}")
    notes: dict[str, str] = {}
    gallery = None
    if gallery_points:
        chosen = _gallery_headline(headlines, gallery_model)
        gallery, notes["gallery"] = build_gallery(store, chosen.series, chosen.checkpoint, k=gallery_points,
                                                  data=data, device=device)
    else:
        notes["gallery"] = "not drawn (gallery_points = 0)"
    matrix, left_out = transfer(store, run_ids, models)
    if left_out:
        notes["transfer matrices not shown"] = ", ".join(left_out) + " (see parry runs show)"
    used = sorted({s.run_id for s in stored_series(store, run_ids)
                   if models is None or s.model in models or s.source in models})
    names = sorted({h.row.name for h in headlines})
    return ReportData(title=title or "Robustness report: " + (", ".join(names) if len(names) <= 3
                                                              else f"{len(names)} models"),
                      models=[h.row for h in headlines], provenance=_provenance(store, used, headlines, notes),
                      attacks=attack_rows(store, run_ids, headlines, models), curves=curves(store, run_ids, models),
                      transfer=matrix, gallery=gallery)


def write_store_report(store: ResultsStore | str | os.PathLike, out_dir: str | os.PathLike, runs: Runs = None,
                       **options: Any) -> tuple[ReportPaths, ReportData]:
    """Build the report (options as :func:`build_report`) and write ``index.html``, ``summary.md``
    and ``leaderboard.html`` (every model in the store) into ``out_dir``."""
    db = store if isinstance(store, ResultsStore) else ResultsStore(store, create=False)
    try:
        data = build_report(db, runs, **options)
        board = leaderboard_rows(db)
    finally:
        if db is not store:
            db.close()
    return write_report(data, out_dir, leaderboard_rows=board), data
