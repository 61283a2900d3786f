"""Tables computed from the results store alone (nothing is rerun); each is a list of dicts.

Every row carries its threat model (norm, eps), the attack, the points (selection and n)
and the seed, and every accuracy its Wilson 95 % interval (:func:`parry.metrics.wilson_interval`).
Only complete series (an outcome for every point of the point set) are used.

Evidence at radius eps, per point (used by the worst case and the robustness curves): an
outcome breaks a point at eps when the point is misclassified after the attack and the
perturbation lies within eps, i.e. the series ran at a radius <= eps, or its stored norm in the
threat model's norm is <= eps (up to ThreatModel.contains' tolerance, 1e-5 relative and
absolute). So a minimum-norm attack gives the accuracy at every eps, and examples found at a
smaller radius count at every larger one, which keeps worst-case curves non-increasing.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Sequence

import torch
from torch import Tensor

from ..metrics import wilson_interval
from .canonical import canonical_json, sha256_text
from .outcomes import Outcomes
from .store import ResultsStore

TOL = 1e-5
#: Recipe fields that name the data set or the machine, ignored when pairing recipes across data sets.
RECIPE_DATASET_KEYS = ("dataset", "data_root", "mirror", "device")

Runs = int | Sequence[int] | None
_RECIPE_COLUMNS = ("dataset", "model", "model_sha256", "norm", "eps", "points", "n", "clean_accuracy",
                   "robust_accuracy", "robust_accuracy_ci95", "strongest_attack")


def within(series: Outcomes, eps: float) -> Tensor:
    """Per point: the series' perturbation lies within radius ``eps`` of the series' norm."""
    if series.eps is not None and series.eps <= eps:
        return torch.ones_like(series.robust)
    return series.norms[series.norm] <= eps * (1 + TOL) + TOL


def robust_at(series: Outcomes, eps: float) -> Tensor:
    """Per point: classified correctly and not broken within ``eps`` by this series."""
    return series.clean_correct & ~(~series.robust & within(series, eps))


def worst_case_points(series: Sequence[Outcomes], eps: float) -> Tensor:
    """Per point: robust to every series at radius ``eps`` (all on one model and point set)."""
    if not series:
        raise ValueError("series: need at least one series of outcomes")
    first = series[0]
    for s in series[1:]:
        if (s.model, s.model_sha256, s.point_set_id, s.norm) != \
                (first.model, first.model_sha256, first.point_set_id, first.norm) or s.n != first.n:
            raise ValueError("series: the worst case needs one model, one norm and one point set")
    robust = first.clean_correct.clone()
    for s in series:
        robust &= robust_at(s, eps)
    return robust


def _rate(k: int, n: int) -> tuple[float, tuple[float, float]]:
    if n == 0:
        return float("nan"), (float("nan"), float("nan"))
    return k / n, wilson_interval(k, n)


def _points(s: Outcomes) -> str:
    p = s.points
    seed = f" seed {p['seed']}" if p["seed"] is not None else ""
    return f"{p['selection']}{seed} {p['n']} of {p['dataset']} {p['split']}"


def _label(s: Outcomes, eps: float | None = None) -> str:
    label = s.attack if not s.transfer else f"{s.attack} from {s.source}"
    return label + (f" @{s.eps:g}" if eps is not None and s.eps is not None and s.eps != eps else "")


def _series(store: ResultsStore, runs: Runs) -> list[Outcomes]:
    return [s for s in store.outcomes(runs) if s.complete]


def _base(s: Outcomes) -> dict[str, Any]:
    return {"run": s.run_id, "model": s.model, "dataset": s.model_dataset, "attack": s.attack,
            "params": s.attack_params, "norm": s.norm, "eps": s.eps, "points": _points(s), "n": s.n,
            "seed": s.run_seed}


def accuracy_table(store: ResultsStore, runs: Runs = None) -> list[dict[str, Any]]:
    """Per (run, model, attack, threat): clean and adversarial accuracy and error rates with their
    95 % intervals, and the attack success rate among the points classified correctly."""
    rows = []
    for s in _series(store, runs):
        if s.min_norm or s.transfer:
            continue
        n, clean, robust = s.n, int(s.clean_correct.sum()), int(s.robust.sum())
        asr, _ = _rate(int((s.success & s.clean_correct).sum()), clean)
        rows.append({**_base(s), "kind": s.attack_kind, "clean_accuracy": clean / n,
                     "clean_accuracy_ci95": wilson_interval(clean, n), "clean_error_rate": 1 - clean / n,
                     "robust_accuracy": robust / n, "robust_accuracy_ci95": wilson_interval(robust, n),
                     "robust_error_rate": 1 - robust / n, "attack_success_rate": asr, "time_s": s.time_s})
    return sorted(rows, key=lambda r: (r["model"], r["norm"], r["eps"], r["attack"], r["run"]))


def _stats(values: Tensor) -> tuple[float, float]:
    if values.numel() == 0:
        return float("nan"), float("nan")
    return float(values.mean()), float(values.median())


def norm_table(store: ResultsStore, runs: Runs = None) -> list[dict[str, Any]]:
    """Per (run, model, minimum-norm attack, norm): success rate among the points classified
    correctly, and mean/median L2 and Linf norms over those successes (as metrics.norm_summary)."""
    rows = []
    for s in _series(store, runs):
        if not s.min_norm or s.transfer:
            continue
        clean = int(s.clean_correct.sum())
        ok = s.success & s.clean_correct
        rate, ci = _rate(int(ok.sum()), clean)
        (l2m, l2d), (lim, lid) = _stats(s.norms["l2"][ok]), _stats(s.norms["linf"][ok])
        rows.append({**_base(s), "clean_accuracy": clean / s.n, "attack_success_rate": rate,
                     "attack_success_rate_ci95": ci, "n_successful": int(ok.sum()), "l2_mean": l2m,
                     "l2_median": l2d, "linf_mean": lim, "linf_median": lid, "time_s": s.time_s})
    return sorted(rows, key=lambda r: (r["model"], r["norm"], r["attack"], r["run"]))


def _groups(series: Iterable[Outcomes]) -> dict[tuple, list[Outcomes]]:
    groups: dict[tuple, list[Outcomes]] = defaultdict(list)
    for s in series:
        groups[s.model, s.model_sha256, s.norm, s.point_set_id].append(s)
    return groups


def _fixed_radii(group: Sequence[Outcomes], extra: Iterable[float]) -> list[float]:
    return sorted({s.eps for s in group if s.eps is not None and not s.transfer} | set(extra))


def worst_case_table(store: ResultsStore, runs: Runs = None, eps_values: Sequence[float] = ()) -> list[dict[str, Any]]:
    """Per (model, norm, eps, points): robust accuracy as the per-point worst case over every
    series in the store (fixed-radius, minimum-norm, AutoAttack stages and transfers), at each
    radius run by some fixed-radius attack and at ``eps_values``."""
    rows = []
    for (model, sha, norm, _), group in sorted(_groups(_series(store, runs)).items(), key=lambda kv: kv[0][:3]):
        first = group[0]
        for eps in _fixed_radii(group, eps_values):
            robust = worst_case_points(group, eps)
            single = {_label(s, eps): int(robust_at(s, eps).sum()) for s in group
                      if s.eps is None or s.eps <= eps}
            strongest = min(single, key=single.get) if single else None  # None: only larger-radius series
            clean = int(torch.stack([s.clean_correct for s in group]).all(dim=0).sum())
            k, n = int(robust.sum()), first.n
            rows.append({"model": model, "model_sha256": sha, "dataset": first.model_dataset, "norm": norm, "eps": eps,
                         "points": _points(first), "n": n, "runs": sorted({s.run_id for s in group}),
                         "clean_accuracy": clean / n, "robust_accuracy": k / n,
                         "robust_accuracy_ci95": wilson_interval(k, n), "attacks": sorted(single),
                         "strongest_attack": strongest,
                         "strongest_attack_accuracy": single[strongest] / n if single else float("nan")})
    return rows


def _curve_grid(group: Sequence[Outcomes], eps_values: Sequence[float]) -> list[float]:
    grid = set(_fixed_radii(group, eps_values)) | {0.0}
    if len(grid) == 1:  # minimum-norm series only: 10 steps up to the largest norm found
        found = [float(s.norms[s.norm][s.success & s.clean_correct].max()) for s in group
                 if bool((s.success & s.clean_correct).any())]
        top = max(found, default=1.0)
        grid |= {top * i / 10 for i in range(1, 11)}
    return sorted(grid)


def robustness_curves(store: ResultsStore, runs: Runs = None, eps_values: Sequence[float] = ()) -> list[dict[str, Any]]:
    """Accuracy against eps per (model, norm, points): measured points of every fixed-radius
    attack ('fixed'), curves from the norms of every minimum-norm attack ('min-norm') and the
    worst case over all series ('worst case') on a grid of the radii run, ``eps_values`` and 0."""
    rows = []
    for (model, sha, norm, _), group in _groups(_series(store, runs)).items():
        grid = _curve_grid(group, eps_values)
        base = {"model": model, "model_sha256": sha, "dataset": group[0].model_dataset, "norm": norm,
                "points": _points(group[0]),
                "n": group[0].n}
        for s in group:
            if s.transfer:
                continue
            radii = grid if s.min_norm else [s.eps]
            for eps in radii:
                k = int(robust_at(s, eps).sum())
                rows.append({**base, "attack": s.attack, "basis": "min-norm" if s.min_norm else "fixed",
                             "run": s.run_id, "eps": eps, "robust_accuracy": k / s.n,
                             "robust_accuracy_ci95": wilson_interval(k, s.n)})
        for eps in grid:
            k = int(worst_case_points(group, eps).sum())
            rows.append({**base, "attack": "worst case", "basis": "worst case", "run": None, "eps": eps,
                         "robust_accuracy": k / base["n"], "robust_accuracy_ci95": wilson_interval(k, base["n"])})
    return sorted(rows, key=lambda r: (r["model"], r["norm"], r["basis"], r["attack"], r["eps"]))


def transfer_table(store: ResultsStore, runs: Runs = None) -> list[dict[str, Any]]:
    """Per (source, target, attack, threat): the success rate of examples crafted on the source
    among the points the target classifies correctly, with the target's accuracies."""
    rows = []
    for s in _series(store, runs):
        if not s.transfer:
            continue
        correct = int(s.clean_correct.sum())
        rate, ci = _rate(int((s.clean_correct & ~s.robust).sum()), correct)
        kept = int((s.clean_correct & s.robust).sum())
        rows.append({"run": s.run_id, "source": s.source, "source_dataset": s.source_dataset, "target": s.model,
                     "target_dataset": s.model_dataset, "attack": s.attack, "params": s.attack_params,
                     "norm": s.norm, "eps": s.eps, "points": _points(s), "n": s.n, "seed": s.run_seed,
                     "n_correct": correct, "success_rate": rate, "success_rate_ci95": ci,
                     "target_clean_accuracy": correct / s.n, "target_robust_accuracy": kept / s.n})
    return sorted(rows, key=lambda r: (r["attack"], r["norm"], r["eps"], r["source"], r["target"], r["run"]))


def transfer_matrix(store: ResultsStore, *, attack: str | None = None, norm: str | None = None,
                    eps: float | None = None, runs: Runs = None) -> tuple[list[str], list[str], Tensor]:
    """``(sources, targets, M)``: M[i, j] the success rate of examples made on source i evaluated
    on target j (NaN where not run) for one (attack, norm, eps); the latest run wins."""
    rows = [r for r in transfer_table(store, runs) if (attack is None or r["attack"] == attack)
            and (norm is None or r["norm"] == norm) and (eps is None or r["eps"] == eps)]
    settings = sorted({(r["attack"], r["norm"], r["eps"]) for r in rows})
    if len(settings) != 1:
        raise ValueError(f"attack: choose one (attack, norm, eps) among {settings}" if settings
                         else "attack: no transfer outcomes match")
    sources = sorted({r["source"] for r in rows})
    targets = sorted({r["target"] for r in rows})
    matrix = torch.full((len(sources), len(targets)), float("nan"))
    for r in sorted(rows, key=lambda r: r["run"]):
        matrix[sources.index(r["source"]), targets.index(r["target"])] = r["success_rate"]
    return sources, targets, matrix


def recipe_key(architecture: str | None, recipe: dict[str, Any]) -> str:
    """Identity of a training recipe regardless of its data set: the architecture and the recipe
    without :data:`RECIPE_DATASET_KEYS`, hashed (12 hex digits)."""
    kept = {k: v for k, v in recipe.items() if k not in RECIPE_DATASET_KEYS}
    return sha256_text(canonical_json({"architecture": architecture, "recipe": kept}))[:12]


def recipe_generalisation(store: ResultsStore, runs: Runs = None,
                          eps_values: Sequence[float] = ()) -> list[dict[str, Any]]:
    """Cross-data-set generalisation of a training recipe: for each recipe (architecture and
    training settings, data set aside) applied to two or more data sets, the clean and worst-case
    robust accuracy of each resulting model at every (norm, eps) evaluated for all of them."""
    recipes = {(m["name"], m["sha256"]): recipe_key(m["architecture"], m["recipe"])
               for m in store.models() if m["recipe"]}
    by_recipe: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in worst_case_table(store, runs, eps_values):
        if (r["model"], r["model_sha256"]) in recipes:
            by_recipe[recipes[r["model"], r["model_sha256"]]].append(r)
    rows = []
    for key, group in sorted(by_recipe.items()):
        datasets = {r["dataset"] for r in group}
        if len(datasets) < 2:
            continue
        settings = defaultdict(set)
        for r in group:
            settings[r["norm"], r["eps"]].add(r["dataset"])
        for r in group:
            if settings[r["norm"], r["eps"]] == datasets:
                rows.append({"recipe": key, **{k: r[k] for k in _RECIPE_COLUMNS}})
    return sorted(rows, key=lambda r: (r["recipe"], r["norm"], r["eps"], r["dataset"], r["model"]))


def cross_dataset_transfer(store: ResultsStore, runs: Runs = None) -> list[dict[str, Any]]:
    """Transfer rows whose source model was trained on another data set than the target (same input
    shape, e.g. MNIST <-> Fashion-MNIST); see :mod:`parry.evaluate.transfer_runner`."""
    return [r for r in transfer_table(store, runs) if r["source_dataset"] != r["target_dataset"]]

