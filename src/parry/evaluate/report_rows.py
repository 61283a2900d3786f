"""The rows of a report, read from the results store through :mod:`parry.evaluate.tables`.

Nothing here runs a model: every number is a stored outcome or a table computed from them.

Headline robust accuracy of a model under a threat model (norm, eps) on a point set:

- the worst case of the ``autoattack-standard`` ensemble (its stored series, the latest run
  when several) when the store has one at that radius; the ensemble column says
  ``autoattack-standard``;
- otherwise the per-point worst case over every series stored for the model
  (:func:`~parry.evaluate.tables.worst_case_table`), labelled :data:`FALLBACK` and explained in
  the row's notes: such a number is not a headline (DESIGN.md, rule 2).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import torch

from .markdown import format_cell
from .outcomes import Outcomes
from .report_data import AttackRow, ModelRow, RobustnessCurve, TransferMatrix
from .store import ResultsStore
from .tables import Runs, accuracy_table, norm_table, robust_at, robustness_curves, transfer_matrix, transfer_table
from .tables import worst_case_table

#: The ensemble whose worst case is the headline robust accuracy.
HEADLINE = "autoattack-standard"
#: The ensemble label of a model row without an AutoAttack-standard evaluation.
FALLBACK = "worst case of the stored attacks (no autoattack-standard)"
#: Norms whose medians the attack table shows (as :func:`~parry.evaluate.tables.norm_table`).
MEDIAN_NORMS = ("l2", "linf")


@dataclass(frozen=True)
class Headline:
    """A model row and the stored series behind its robust accuracy: the AutoAttack-standard
    ensemble, or (fallback) the strongest fixed-radius series at exactly the row's eps."""

    row: ModelRow
    series: Outcomes
    checkpoint: str | None


def stored_series(store: ResultsStore, runs: Runs = None) -> list[Outcomes]:
    """The complete series of ``runs`` (all runs when None), as the tables use them."""
    return [s for s in store.outcomes(runs) if s.complete]


def _group_key(model: str, sha: str, norm: str, runs: Iterable[int], n: int) -> tuple:
    # A grid or transfer run has one point set per data set, so the runs identify the point set.
    return model, sha, norm, frozenset(runs), n


def _groups(series: Sequence[Outcomes]) -> dict[tuple, list[Outcomes]]:
    by_set: dict[tuple, list[Outcomes]] = defaultdict(list)
    for s in series:
        by_set[s.model, s.model_sha256, s.norm, s.point_set_id].append(s)
    return {_group_key(m, sha, norm, {s.run_id for s in group}, group[0].n): group
            for (m, sha, norm, _), group in by_set.items()}


def _count(mask: torch.Tensor) -> int:
    return int(mask.sum())


def _headline_series(group: Sequence[Outcomes], eps: float) -> tuple[Outcomes | None, Outcomes]:
    """(the latest AutoAttack-standard series at eps or None, the strongest single fixed-radius
    series at exactly eps: lowest robust accuracy, the first stored on a tie)."""
    aa = [s for s in group if s.attack == HEADLINE and s.attack_kind == "ensemble" and s.eps == eps]
    fixed = [s for s in group if s.eps == eps and not s.transfer and s.attack_kind != "stage"] or \
        [s for s in group if s.eps == eps]
    strongest = min(fixed, key=lambda s: _count(s.robust))
    return (max(aa, key=lambda s: s.run_id) if aa else None), strongest


def points_note(s: Outcomes) -> str:
    """'points: spread, 1000 of mnist test': how the series' points were chosen."""
    p = s.points
    seed = f" (seed {p['seed']})" if p["seed"] is not None else ""
    return f"points: {p['selection']}{seed}, {p['n']} of {p['dataset']} {p['split']}"


def _display_names(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """A model name, or name@sha when one name covers several weights."""
    shas: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        shas[r["model"]].add(r["model_sha256"])
    return {(r["model"], r["model_sha256"]): r["model"] if len(shas[r["model"]]) == 1
            else f"{r['model']}@{r['model_sha256'][:8]}" for r in rows}


def model_rows(store: ResultsStore, runs: Runs = None, models: Sequence[str] | None = None) -> list[Headline]:
    """One :class:`Headline` per (model, norm, eps, point set) evaluated at a fixed radius,
    sorted by model, norm and eps. ``models`` restricts them to these model names."""
    groups = _groups(stored_series(store, runs))
    wc_rows = [r for r in worst_case_table(store, runs) if models is None or r["model"] in models]
    names = _display_names(wc_rows)
    records = {(m["name"], m["sha256"]): m for m in store.models()}
    out = []
    for r in wc_rows:
        group = groups[_group_key(r["model"], r["model_sha256"], r["norm"], r["runs"], r["n"])]
        aa, strongest = _headline_series(group, r["eps"])
        checkpoint = records[r["model"], r["model_sha256"]]["checkpoint"]
        notes = []
        if aa is not None:
            series, ensemble = aa, HEADLINE
            clean, robust = _count(aa.clean_correct) / aa.n, _count(aa.robust) / aa.n
            if r["robust_accuracy"] < robust:
                notes.append(f"worst case over all {len(r['attacks'])} stored attacks: "
                             f"{format_cell('robust_accuracy', r['robust_accuracy'])} %")
        else:
            series, ensemble = strongest, FALLBACK
            clean, robust = r["clean_accuracy"], r["robust_accuracy"]
            notes.append(f"not a headline number: per-point worst case of {', '.join(r['attacks'])}; strongest "
                         f"alone: {r['strongest_attack']} "
                         f"{format_cell('robust_accuracy', r['strongest_attack_accuracy'])} %")
        seeds = sorted({s.run_seed for s in group})
        if len(seeds) > 1:
            notes.append(f"runs seeded {', '.join(map(str, seeds))}")
        notes.append(points_note(series))
        notes.append(f"run {series.run_id}")
        if checkpoint is None:
            notes.append(f"no checkpoint file; weights sha256 {r['model_sha256'][:12]}")
        row = ModelRow(name=names[r["model"], r["model_sha256"]], dataset=r["dataset"], clean_accuracy=clean,
                       robust_accuracy=robust, n=r["n"], seed=series.run_seed, norm=r["norm"], eps=r["eps"],
                       ensemble=ensemble, checkpoint_sha256=None if checkpoint is None else r["model_sha256"],
                       notes="; ".join(notes))
        out.append(Headline(row, series, checkpoint))
    return out


def params_text(params: dict[str, Any], kind: str = "attack") -> str:
    """An attack's parameters as one line, ``key=value`` in key order (stages of an ensemble by name)."""
    if "stages" in params:
        stages = "; ".join(f"{s.get('name', '?')}: {params_text({k: v for k, v in s.items() if k != 'name'})}"
                           for s in params["stages"])
        rest = params_text({k: v for k, v in params.items() if k != "stages"})
        return f"{rest}; stages: {stages}" if rest else stages
    text = ", ".join(f"{k}={v}" for k, v in sorted(params.items()))
    return f"cumulative worst case up to this stage; {text}" if kind == "stage" else text


def _medians(s: Outcomes) -> dict[str, float]:
    ok = s.success & s.clean_correct
    return {k: float(s.norms[k][ok].median()) if bool(ok.any()) else math.nan for k in MEDIAN_NORMS}


def _series_key(run: int, model: str, attack: str, params: str, norm: str, eps: float | None) -> tuple:
    return run, model, attack, params, norm, eps


def attack_rows(store: ResultsStore, runs: Runs = None, headlines: Sequence[Headline] = (),
                models: Sequence[str] | None = None) -> list[AttackRow]:
    """Every attack on the models: the fixed-radius rows of
    :func:`~parry.evaluate.tables.accuracy_table` (AutoAttack stages as the cumulative worst
    case), and each minimum-norm attack at the radii of the model rows (``headlines``), with the
    median L2 and Linf norms over the successful, initially correct points."""
    series = [s for s in stored_series(store, runs) if not s.transfer and (models is None or s.model in models)]
    by_key = {_series_key(s.run_id, s.model, s.attack, params_text(s.attack_params), s.norm, s.eps): s
              for s in series}
    acc = [r for r in accuracy_table(store, runs) if models is None or r["model"] in models]
    labels = defaultdict(set)
    for r in acc:
        labels[r["model"], r["attack"], r["norm"], r["eps"], params_text(r["params"])].add(r["run"])
    out = []
    for r in acc:
        s = by_key[_series_key(r["run"], r["model"], r["attack"], params_text(r["params"]), r["norm"], r["eps"])]
        several = len(labels[r["model"], r["attack"], r["norm"], r["eps"], params_text(r["params"])]) > 1
        out.append(AttackRow(r["attack"] + (f" (run {r['run']})" if several else ""),
                             params_text(r["params"], r["kind"]), r["norm"], r["eps"], r["robust_accuracy"],
                             r["attack_success_rate"], r["n"], _medians(s), model=r["model"]))
    radii = defaultdict(set)
    for h in headlines:
        radii[h.series.model, h.series.norm, h.series.point_set_id].add(h.row.eps)
    for r in norm_table(store, runs):
        if models is not None and r["model"] not in models:
            continue
        s = by_key[_series_key(r["run"], r["model"], r["attack"], params_text(r["params"]), r["norm"], None)]
        clean = _count(s.clean_correct)
        for eps in sorted(radii[s.model, s.norm, s.point_set_id]):
            kept = _count(robust_at(s, eps))
            out.append(AttackRow(f"{r['attack']} (min-norm)", params_text(r["params"]), r["norm"], eps, kept / s.n,
                                 (clean - kept) / clean if clean else math.nan, s.n,
                                 {"l2": r["l2_median"], "linf": r["linf_median"]}, model=r["model"]))
    return sorted(out, key=lambda a: (a.model, a.norm, a.eps, a.attack))


def curves(store: ResultsStore, runs: Runs = None, models: Sequence[str] | None = None) -> list[RobustnessCurve]:
    """The curves of :func:`~parry.evaluate.tables.robustness_curves`: one per model, attack and
    norm (AutoAttack stages left out; their ensemble is drawn). Two series that would share a
    line at one eps (the same attack name with other options) get lines of their own."""
    stages = {s.attack for s in stored_series(store, runs) if s.attack_kind == "stage"}
    rows = [r for r in robustness_curves(store, runs)
            if r["attack"] not in stages and (models is None or r["model"] in models)]
    point_sets = defaultdict(set)
    runs_of = defaultdict(set)
    for r in rows:
        point_sets[r["model"]].add(r["points"])
        runs_of[r["model"], r["norm"], r["points"], r["attack"], r["basis"]].add(r["run"])
    lines: dict[tuple, list[dict[float, float]]] = defaultdict(list)
    for r in rows:
        model = r["model"] + (f" ({r['points']})" if len(point_sets[r["model"]]) > 1 else "")
        attack = r["attack"] + (" (min-norm)" if r["basis"] == "min-norm" else "")
        if len(runs_of[r["model"], r["norm"], r["points"], r["attack"], r["basis"]]) > 1:
            attack += f" (run {r['run']})"
        variants = lines[model, attack, r["norm"]]
        free = next((v for v in variants if r["eps"] not in v), None)
        if free is None:
            free = {}
            variants.append(free)
        free[r["eps"]] = r["robust_accuracy"]
    out = []
    for (model, attack, norm), variants in lines.items():
        for i, points in enumerate(variants):
            label = attack if i == 0 else f"{attack} #{i + 1}"
            out.append(RobustnessCurve(model, label, norm, sorted(points.items())))
    return out


def transfer(store: ResultsStore, runs: Runs = None,
             models: Sequence[str] | None = None) -> tuple[TransferMatrix | None, list[str]]:
    """The transfer matrix of the (attack, norm, eps) with the most measured pairs (the first on a
    tie), and the settings left out. With ``models``, only settings involving one of them."""
    rows = [r for r in transfer_table(store, runs)
            if models is None or r["source"] in models or r["target"] in models]
    counts: dict[tuple, int] = defaultdict(int)
    for r in rows:
        counts[r["attack"], r["norm"], r["eps"]] += 1
    if not counts:
        return None, []
    settings = sorted(counts, key=lambda k: (-counts[k], k))
    attack, norm, eps = settings[0]
    sources, targets, matrix = transfer_matrix(store, attack=attack, norm=norm, eps=eps, runs=runs)
    left = [f"{a} {n} eps {e:g}" for a, n, e in settings[1:]]
    return TransferMatrix(sources, targets, matrix, attack, norm, eps), left
