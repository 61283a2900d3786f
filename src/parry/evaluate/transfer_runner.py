"""Transfer evaluations: adversarial examples crafted on a source model, evaluated on targets.

For every source, attack, threat model and batch the examples are crafted once, with the
attack's full budget (``Attack.generate``: no early exit, as a transfer attacker would), and
evaluated on every target that takes inputs of the same shape, the source included (its
white-box fixed-budget rate is the matrix's diagonal). The points are those of the target's
data set. When the source was trained on another data set (MNIST -> Fashion-MNIST), its
labels mean nothing for these points, so the examples are crafted against the source's own
predictions (the attack pushes the source away from its current decision); success is always
judged on the target against the true labels. All targets of one work item are written in
one transaction.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Sequence

import torch
from tqdm.auto import tqdm

from ..metrics import predict
from ..result import AttackResult
from ..validation import check_positive_int
from .canonical import canonical_json
from .environment import environment
from .model_spec import ModelSpec
from .outcomes import OutcomeBatch
from .points import EvalPoints
from .runner import GridRun
from .specs import GridAttack, ThreatSpec, as_attacks, as_threats, attack_params
from .store import ResultsStore, UnitKey, UnitRecord
from .work import check_models, describe_points, model_ids, on_device, open_store, points_by_dataset, seeded, unit_seed


def _check_attacks(attacks: list[GridAttack], threats: list[ThreatSpec]) -> None:
    for a in attacks:
        if a.preset is not None or a.min_norm:
            raise ValueError(f"attacks: {a.name} cannot be transferred here; use fixed-radius attacks "
                             "(a registry name without min_norm=True)")
        bad = [t.norm for t in threats if t.norm not in a.norms()]
        if bad:
            raise ValueError(f"attacks: {a.name} does not support the norm(s) {bad}")
    if any(not t.eps for t in threats):
        raise ValueError("threats: transfer evaluations need at least one eps per norm")


def run_transfers(sources: Sequence[ModelSpec], targets: Sequence[ModelSpec], attacks: Sequence[GridAttack | str],
                  threats: Sequence[ThreatSpec], points: EvalPoints | Sequence[EvalPoints],
                  store: ResultsStore | str | os.PathLike, *, seed: int = 0, batch_size: int = 256,
                  progress: bool = True, run_id: int | None = None, fresh: bool = False,
                  on_unit: Callable[[dict[str, Any]], None] | None = None) -> GridRun:
    """Craft on each source, evaluate on each target of the same input shape; record per sample
    (target model and source model are both kept with every outcome). Arguments as
    :func:`parry.evaluate.runner.run_grid`; ``points`` cover the targets' data sets."""
    sources, targets = check_models(sources, "sources"), check_models(targets, "targets")
    attacks, threats = as_attacks(attacks), as_threats(threats)
    _check_attacks(attacks, threats)
    check_positive_int(batch_size, "batch_size")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed: expected an int, got {seed!r}")
    clash = sorted({s.name for s in sources for t in targets if s.name == t.name and s.sha256 != t.sha256})
    if clash:
        raise ValueError(f"targets: {clash} name different weights among the sources and the targets")
    shape = lambda m: tuple(m.classifier.input_shape or ())  # noqa: E731
    datasets = sorted({t.dataset for t in targets})
    point_sets = points_by_dataset(points, set(datasets))
    groups = [(s, ds, [t for t in targets if t.dataset == ds and shape(t) == shape(s)])
              for s in sources for ds in datasets]
    groups = [g for g in groups if g[2]]
    if not groups:
        raise ValueError("targets: no target takes inputs of a source's shape")
    built = {(i, t.norm, eps): a.build(eps, t.norm, seed=seed, batch_size=batch_size)
             for i, a in enumerate(attacks) for t in threats for eps in t.eps}
    config = {"kind": "transfer", "sources": [{"name": m.name, "sha256": m.sha256} for m in sources],
              "targets": [{"name": m.name, "sha256": m.sha256} for m in targets],
              "attacks": [{"name": a.name, "options": dict(a.options)} for a in attacks],
              "threats": [t.describe() for t in threats], "points": describe_points(point_sets),
              "batch_size": batch_size, "seed": seed}
    work = [(s, ds, tg, k, b) for (s, ds, tg) in groups for k in built for b in point_sets[ds].batches(batch_size)]
    units_total = sum(len(w[2]) for w in work)  # one unit per target of each work item
    with open_store(store) as db:
        mids = model_ids(db, list({m.name: m for m in [*sources, *targets]}.values()))
        pids = {name: db.add_point_set(p) for name, p in point_sets.items()}
        hashes = {name: p.indices_sha256() for name, p in point_sets.items()}
        aids = {k: db.add_attack(attacks[k[0]].name, attack_params(obj.params())) for k, obj in built.items()}
        env = environment(sources[0].classifier.device)
        rid, resumed = db.start_run("transfer", config, seed, env, units_total, run_id=run_id, fresh=fresh)
        done = db.done_units(rid)
        on_dev: dict[tuple[str, str], EvalPoints] = {}
        ran = skipped = 0
        for src, ds, tgts, (i, norm, eps), (batch, start, stop) in tqdm(work, desc="transfer", disable=not progress):
            clf = src.classifier
            tid = db.add_threat(norm, eps, clf.bounds)
            keys = [UnitKey(mids[t.name], mids[src.name], aids[i, norm, eps], tid, pids[ds], batch) for t in tgts]
            if all(k in done for k in keys):
                skipped += 1
                continue
            pts = on_device(point_sets[ds], clf.device, on_dev)
            x, y = pts.x[start:stop], pts.y[start:stop]
            craft_y = y if src.dataset == ds else predict(clf, x)
            s = unit_seed(seed, "transfer", src.name, src.sha256, canonical_json([attacks[i].name, attacks[i].options]),
                          norm, eps, hashes[ds], batch)
            t0 = time.perf_counter()
            with seeded(s, clf.device):
                adv = built[i, norm, eps].generate(clf, x, craft_y)
            if clf.device.type == "cuda":
                torch.cuda.synchronize(clf.device)
            craft_s = time.perf_counter() - t0
            norms = AttackResult.perturbation_norms(adv, x)
            records = [UnitRecord(k, start, _on_target(t, x, adv, y, norms), craft_s, 2 * x.shape[0])
                       for k, t in zip(keys, tgts)]
            written = db.record_units(rid, records)
            done.update(keys)
            ran += 1
            if on_unit is not None:
                on_unit({"run_id": rid, "source": src.name, "dataset": ds, "attack": attacks[i].name, "norm": norm,
                         "eps": eps, "batch": batch, "units_written": written})
        if len(db.done_units(rid)) == units_total:
            db.finish_run(rid)
    return GridRun(rid, resumed, len(work), ran, skipped)


def _on_target(target: ModelSpec, x: torch.Tensor, adv: torch.Tensor, y: torch.Tensor,
               norms: dict[str, torch.Tensor]) -> OutcomeBatch:
    """The target's verdict on the clean points and on the transferred examples."""
    dev = target.classifier.device
    y_t = y.to(dev)
    clean_pred, adv_pred = predict(target.classifier, x.to(dev)), predict(target.classifier, adv.to(dev))
    return OutcomeBatch(clean_pred == y_t, adv_pred != y_t, adv_pred == y_t, clean_pred, adv_pred, norms)
