"""The benchmark runner: a grid of models x attacks x threat models over fixed test points,
recorded per sample in the results store, resumable after any interruption.

Work is cut into units (model, attack, threat model, batch of points). Units already in the
store are skipped (resume), and each unit's random state is seeded from the run seed and the
unit's identity alone, so a resumed run records exactly the outcomes of an uninterrupted one.
Minimum-norm attacks run once per norm without a radius and store every point's perturbation
norms (accuracy at any eps follows from them); an AutoAttack preset stores its worst case and
the cumulative worst case after each stage, all in one transaction per batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from tqdm.auto import tqdm

from ..attacks.ensemble import AttackEnsemble
from ..validation import check_positive_int
from .canonical import canonical_json
from .environment import environment
from .model_spec import ModelSpec
from .outcomes import OutcomeBatch
from .points import EvalPoints
from .specs import GridAttack, ThreatSpec, as_attacks, as_threats, attack_params
from .store import ResultsStore, UnitKey, UnitRecord
from .work import check_models, describe_points, model_ids, on_device, open_store, points_by_dataset, seeded, unit_seed


@dataclass(frozen=True)
class GridRun:
    """What one call of :func:`run_grid` or :func:`run_transfers` did, in work items (a work
    item is one batch of one (model, attack, threat) or, for transfers, of one source)."""

    run_id: int
    resumed: bool
    work_total: int
    work_run: int
    work_skipped: int


def _radii(attack: GridAttack, threat: ThreatSpec) -> list[float | None]:
    return [None] if attack.is_min_norm else list(threat.eps)


def _check_grid(attacks: list[GridAttack], threats: list[ThreatSpec]) -> None:
    bad = [f"{a.name} ({t.norm})" for a in attacks for t in threats if t.norm not in a.norms()]
    if bad:
        raise ValueError(f"attacks: not available in the threat model's norm: {bad}; run such attacks "
                         "in a grid of their own norms")
    for t in threats:
        if not t.eps and any(not a.is_min_norm for a in attacks):
            raise ValueError(f"threats: the {t.norm} threat model lists no eps for the fixed-radius attacks")


def run_grid(models: Sequence[ModelSpec], attacks: Sequence[GridAttack | str], threats: Sequence[ThreatSpec],
             points: EvalPoints | Sequence[EvalPoints], store: ResultsStore | str | os.PathLike, *,
             seed: int = 0, batch_size: int = 256, progress: bool = True, run_id: int | None = None,
             fresh: bool = False, on_unit: Callable[[dict[str, Any]], None] | None = None) -> GridRun:
    """Evaluate every model under every attack and threat model; record per-sample outcomes.

    Args:
        models: the models (:class:`ModelSpec`), each evaluated on the points of its data set.
        attacks: :class:`GridAttack` or attack names ('pgd', 'autoattack-standard', ...).
        threats: one :class:`ThreatSpec` (norm and radii) per norm.
        points: the evaluation points, one :class:`EvalPoints` per data set of the models.
        store: a :class:`ResultsStore` or the path of its file.
        seed: the run seed (with the unit's identity it seeds every unit).
        batch_size: points per unit of work.
        progress: show a tqdm progress bar.
        run_id: resume this run (its configuration must match); by default the latest run with
            the same configuration is resumed, or a new run starts. ``fresh``: always start anew.
        on_unit: called with a description of each work item after it is recorded.
    """
    models = check_models(models)
    attacks, threats = as_attacks(attacks), as_threats(threats)
    check_positive_int(batch_size, "batch_size")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed: expected an int, got {seed!r}")
    _check_grid(attacks, threats)
    point_sets = points_by_dataset(points, {m.dataset for m in models})
    built: dict[tuple[int, str, float | None], Any] = {}
    for i, a in enumerate(attacks):
        for t in threats:
            for eps in _radii(a, t):
                built[i, t.norm, eps] = a.build(eps, t.norm, seed=seed, batch_size=batch_size)
    config = {"kind": "grid", "models": [{"name": m.name, "sha256": m.sha256} for m in models],
              "attacks": [a.describe() for a in attacks], "threats": [t.describe() for t in threats],
              "points": describe_points(point_sets), "batch_size": batch_size, "seed": seed}
    work = [(m, i, norm, eps, b) for m in models for (i, norm, eps) in built
            for b in point_sets[m.dataset].batches(batch_size)]
    units_total = sum(1 + (len(built[i, n, e].stages) if isinstance(built[i, n, e], AttackEnsemble) else 0)
                      for (_, i, n, e, _) in work)
    with open_store(store) as db:
        mids = model_ids(db, models)
        pids = {name: db.add_point_set(p) for name, p in point_sets.items()}
        hashes = {name: p.indices_sha256() for name, p in point_sets.items()}
        aids = {k: _attack_ids(db, attacks[k[0]], obj) for k, obj in built.items()}
        env = environment(models[0].classifier.device)
        rid, resumed = db.start_run("grid", config, seed, env, units_total, run_id=run_id, fresh=fresh)
        done = db.done_units(rid)
        on_dev: dict[tuple[str, str], EvalPoints] = {}
        tids: dict[tuple, int] = {}
        ran = skipped = 0
        for m, i, norm, eps, (batch, start, stop) in tqdm(work, desc="grid", disable=not progress):
            clf = m.classifier
            if (norm, eps, clf.bounds) not in tids:
                tids[norm, eps, clf.bounds] = db.add_threat(norm, eps, clf.bounds)
            tid = tids[norm, eps, clf.bounds]
            keys = [UnitKey(mids[m.name], mids[m.name], aid, tid, pids[m.dataset], batch)
                    for aid in aids[i, norm, eps]]
            if all(k in done for k in keys):
                skipped += 1
                continue
            pts = on_device(point_sets[m.dataset], clf.device, on_dev)
            attack = built[i, norm, eps]
            s = unit_seed(seed, m.name, m.sha256, canonical_json(attacks[i].describe()), norm, eps,
                          hashes[m.dataset], batch)
            with seeded(s, clf.device):
                out = attack(clf, pts.x[start:stop], pts.y[start:stop])
            written = db.record_units(rid, _records(keys, start, out))
            done.update(keys)
            ran += 1
            if on_unit is not None:
                on_unit({"run_id": rid, "model": m.name, "attack": attacks[i].name, "norm": norm, "eps": eps,
                         "batch": batch, "units_written": written})
        if len(db.done_units(rid)) == units_total:
            db.finish_run(rid)
    return GridRun(rid, resumed, len(work), ran, skipped)


def _attack_ids(db: ResultsStore, spec: GridAttack, attack: Any) -> list[int]:
    """Store ids: [attack] or, for an ensemble, [ensemble, stage 1, stage 2, ...]."""
    if not isinstance(attack, AttackEnsemble):
        return [db.add_attack(spec.name, attack_params(attack.params()))]
    parent = db.add_attack(spec.name, attack_params(attack.params()), kind="ensemble")
    return [parent] + [db.add_attack(f"{spec.name}/{st.name}", attack_params(st.attack.params()), kind="stage",
                                     parent_id=parent) for st in attack.stages]


def _records(keys: list[UnitKey], start: int, out: Any) -> list[UnitRecord]:
    """Unit records from an AttackResult, or from an EnsembleResult (worst case, then each stage)."""
    if len(keys) == 1:
        return [UnitRecord(keys[0], start, OutcomeBatch.from_result(out), out.time_s, out.queries, out.steps)]
    records = [UnitRecord(keys[0], start, OutcomeBatch.from_result(out.result), out.result.time_s,
                          out.result.queries)]
    for s, (key, stage) in enumerate(zip(keys[1:], out.stages)):
        records.append(UnitRecord(key, start, OutcomeBatch.from_stage(out, s), stage["time_s"], stage["queries"]))
    return records
