"""The results store: every per-sample outcome of every evaluation, in one SQLite file.

One file per project directory by default (``./parry-results.sqlite``). The schema is in
:mod:`parry.evaluate.schema`. The file is in WAL mode and every write is one transaction
(``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any exception). A unit of work, the
outcomes of one (run, model, source model, attack, threat model, point set, batch), is written
in one transaction and guarded by UNIQUE constraints, so it is either wholly recorded or
absent: a run killed at any moment (even SIGKILL) and restarted resumes where it stopped,
with no row lost or duplicated.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch

from ..result import NORM_NAMES
from ..threat import canonical_norm
from . import schema
from .canonical import canonical_json, sha256_text
from .environment import resume_mismatch
from .outcomes import OutcomeBatch, Outcomes
from .points import EvalPoints
from .schema import StoreError

DEFAULT_STORE = "parry-results.sqlite"
_ANY: Any = object()  # "no filter" for arguments where None is a value (eps=None: minimum norm)


@dataclass(frozen=True)
class UnitKey:
    """The identity of a unit of work inside a run (store ids)."""

    model_id: int
    source_id: int
    attack_id: int
    threat_id: int
    point_set_id: int
    batch: int


@dataclass
class UnitRecord:
    """A finished unit of work: its outcomes for points ``first_point ...`` and its timing."""

    key: UnitKey
    first_point: int
    outcomes: OutcomeBatch
    time_s: float
    queries: int
    steps: int = 0


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class ResultsStore:
    """Open (or create) the results store at ``path``.

    Args:
        path: the SQLite file; default ``./parry-results.sqlite``.
        create: create the file when it does not exist (else FileNotFoundError).
        migrate: migrate a store of an older schema version (else refuse it).
    Raises :class:`~parry.evaluate.schema.StoreError` (a ValueError) for a file that is not a
    store, or whose schema version is newer than this parry's or older without a migration.
    """

    def __init__(self, path: str | os.PathLike = DEFAULT_STORE, *, create: bool = True, migrate: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise FileNotFoundError(f"store: no results store at {self.path}")
        if self.path.exists() and not self.path.is_file():
            raise ValueError(f"store: {self.path} is not a file")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(self.path), timeout=60.0, isolation_level=None)
        self._depth = 0
        try:
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._conn.execute("PRAGMA busy_timeout = 60000")
            with self.transaction() as conn:
                version = schema.found_version(conn, str(self.path))
                if version is None:
                    schema.create(conn)
                else:
                    schema.upgrade(conn, version, str(self.path), migrate)
            mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StoreError(f"store: {self.path} cannot use WAL mode (journal mode {mode})")
            self._conn.execute("PRAGMA synchronous = NORMAL")  # WAL: commits survive a crashed process
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise StoreError(f"store: cannot use {self.path} as an SQLite database: {exc}") from exc
        except BaseException:
            self._conn.close()
            raise

    # ------------------------------------------------------------------ plumbing
    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "ResultsStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back when the body raises. A nested call is
        a SAVEPOINT inside the outer transaction: its own failure undoes only its own writes."""
        if self._depth:
            name = f"nested_{self._depth}"
            self._conn.execute(f"SAVEPOINT {name}")
            self._depth += 1
            try:
                yield self._conn
            except BaseException:
                self._conn.execute(f"ROLLBACK TO {name}")
                self._conn.execute(f"RELEASE {name}")
                raise
            finally:
                self._depth -= 1
            self._conn.execute(f"RELEASE {name}")
            return
        self._conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self._conn
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise
        finally:
            self._depth = 0

    def _id(self, conn: sqlite3.Connection, insert: str, values: tuple, select: str, key: tuple) -> int:
        conn.execute(insert, values)
        return int(conn.execute(select, key).fetchone()[0])

    # ------------------------------------------------------------------ registration (idempotent)
    def add_model(self, name: str, sha256: str, dataset: str, *, checkpoint: str | None = None,
                  architecture: str | None = None, recipe: dict[str, Any] | None = None) -> int:
        """The id of the model (name, sha256), registered on first use."""
        recipe_json = None if recipe is None else canonical_json(recipe)
        with self.transaction() as conn:
            row = conn.execute("SELECT id, dataset FROM models WHERE name = ? AND sha256 = ?",
                               (name, sha256)).fetchone()
            if row is not None:
                if row[1] != dataset:
                    raise ValueError(f"dataset: model {name!r} is recorded for {row[1]!r}, not {dataset!r}")
                return int(row[0])
            return int(conn.execute(
                "INSERT INTO models (name, sha256, dataset, checkpoint, architecture, recipe) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (name, sha256, dataset, checkpoint, architecture, recipe_json)).lastrowid)

    def add_attack(self, name: str, params: dict[str, Any], *, kind: str = "attack",
                   parent_id: int | None = None) -> int:
        """The id of the attack ``name`` with ``params`` (canonical JSON, deduplicated by hash)."""
        if kind not in ("attack", "ensemble", "stage"):
            raise ValueError(f"kind: expected 'attack', 'ensemble' or 'stage', got {kind!r}")
        text = canonical_json(params)
        digest = sha256_text(canonical_json([name, kind, text, parent_id]))
        with self.transaction() as conn:
            return self._id(conn, "INSERT OR IGNORE INTO attacks (name, kind, params, sha256, parent_id) "
                                  "VALUES (?, ?, ?, ?, ?)", (name, kind, text, digest, parent_id),
                            "SELECT id FROM attacks WHERE sha256 = ?", (digest,))

    def add_threat(self, norm: str, eps: float | None, bounds: tuple[float, float] = (0.0, 1.0)) -> int:
        """The id of the threat model (norm, eps, bounds); eps None: unbounded (minimum norm)."""
        norm = canonical_norm(norm)
        if eps is not None and (not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps < 0):
            raise ValueError(f"eps: expected a finite radius >= 0 or None, got {eps!r}")
        key = (norm, None if eps is None else float(eps), float(bounds[0]), float(bounds[1]))
        with self.transaction() as conn:
            return self._id(conn, "INSERT OR IGNORE INTO threats (norm, eps, low, high) VALUES (?, ?, ?, ?)", key,
                            "SELECT id FROM threats WHERE norm = ? AND eps IS ? AND low = ? AND high = ?", key)

    def add_point_set(self, points: EvalPoints) -> int:
        """The id of the point set, with one row per point (test-set index and label)."""
        d = points.describe()
        key = (d["dataset"], d["split"], d["selection"], d["indices_sha256"])
        with self.transaction() as conn:
            row = conn.execute("SELECT id FROM point_sets WHERE dataset = ? AND split = ? AND selection = ? "
                               "AND indices_sha256 = ?", key).fetchone()
            if row is not None:
                return int(row[0])
            pid = int(conn.execute(
                "INSERT INTO point_sets (dataset, split, selection, n, seed, source_size, indices_sha256) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (d["dataset"], d["split"], d["selection"], d["n"], d["seed"], d["source_size"],
                 d["indices_sha256"])).lastrowid)
            conn.executemany("INSERT INTO points (point_set_id, point, test_index, label) VALUES (?, ?, ?, ?)",
                             [(pid, i, t, lab) for i, (t, lab) in
                              enumerate(zip(points.indices.tolist(), points.y.cpu().tolist()))])
            return pid

    # ------------------------------------------------------------------ runs
    def start_run(self, kind: str, config: dict[str, Any], seed: int, environment: dict[str, Any],
                  units_total: int, *, run_id: int | None = None, fresh: bool = False) -> tuple[int, bool]:
        """``(run id, resumed)``: resume ``run_id``, else the latest run with the same
        configuration (unless ``fresh``), else start a new run. Resuming needs the same
        configuration and the same python/torch/numpy/parry versions and device."""
        text = canonical_json(config)
        digest = sha256_text(text)
        with self.transaction() as conn:
            if run_id is not None:
                row = conn.execute("SELECT id, config_sha256, environment FROM runs WHERE id = ?", (run_id,)).fetchone()
                if row is None:
                    raise ValueError(f"run_id: no run {run_id} in {self.path}")
                if row[1] != digest:
                    raise ValueError(f"run_id: run {run_id} was started with another configuration "
                                     "(models, attacks, threat models, points, batch size or seed)")
            elif not fresh:
                row = conn.execute("SELECT id, config_sha256, environment FROM runs WHERE config_sha256 = ? "
                                   "AND kind = ? ORDER BY id DESC LIMIT 1", (digest, kind)).fetchone()
            else:
                row = None
            if row is not None:
                differ = resume_mismatch(json.loads(row[2]), environment)
                if differ:
                    raise StoreError(f"run_id: run {row[0]} ran with {differ} (recorded, now); results would mix "
                                     "environments. Start a fresh run instead")
                return int(row[0]), True
            new_id = conn.execute(
                "INSERT INTO runs (kind, created, status, seed, config, config_sha256, environment, units_total) "
                "VALUES (?, ?, 'running', ?, ?, ?, ?, ?)",
                (kind, _now(), seed, text, digest, canonical_json(environment), units_total)).lastrowid
            return int(new_id), False

    def finish_run(self, run_id: int) -> None:
        """Mark the run finished when all its units are recorded."""
        with self.transaction() as conn:
            total, done = conn.execute("SELECT units_total, (SELECT COUNT(*) FROM units WHERE run_id = ?) FROM runs "
                                       "WHERE id = ?", (run_id, run_id)).fetchone()
            if done != total:
                raise ValueError(f"run_id: run {run_id} has {done} of its {total} units recorded")
            conn.execute("UPDATE runs SET status = 'finished', finished = COALESCE(finished, ?) WHERE id = ?",
                         (_now(), run_id))

    def done_units(self, run_id: int) -> set[UnitKey]:
        """The units of ``run_id`` already recorded."""
        rows = self._conn.execute("SELECT model_id, source_id, attack_id, threat_id, point_set_id, batch FROM units "
                                  "WHERE run_id = ?", (run_id,))
        return {UnitKey(*r) for r in rows}

    def record_units(self, run_id: int, records: Sequence[UnitRecord]) -> int:
        """Write ``records`` in one transaction; units already recorded are left as they are.
        Returns how many were written. Any error rolls the whole call back."""
        written = 0
        with self.transaction() as conn:
            for rec in records:
                k = rec.key
                ident = (run_id, k.model_id, k.source_id, k.attack_id, k.threat_id, k.point_set_id, k.batch)
                if conn.execute("SELECT 1 FROM units WHERE run_id = ? AND model_id = ? AND source_id = ? AND "
                                "attack_id = ? AND threat_id = ? AND point_set_id = ? AND batch = ?",
                                ident).fetchone():
                    continue
                unit_id = conn.execute(
                    "INSERT INTO units (run_id, model_id, source_id, attack_id, threat_id, point_set_id, batch, "
                    "first_point, n_points, time_s, queries, steps, recorded) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*ident, rec.first_point, len(rec.outcomes), float(rec.time_s), int(rec.queries), int(rec.steps),
                     _now())).lastrowid
                self._insert_outcomes(conn, ident[:-1], unit_id, rec.outcomes.rows(rec.first_point))
                written += 1
        return written

    @staticmethod
    def _insert_outcomes(conn: sqlite3.Connection, series: tuple, unit_id: int, rows: list[tuple]) -> None:
        conn.executemany(
            "INSERT INTO outcomes (run_id, model_id, source_id, attack_id, threat_id, point_set_id, point, unit_id, "
            "clean_correct, success, robust, clean_pred, adv_pred, l0, l1, l2, linf, queries) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(*series, r[0], unit_id, *r[1:]) for r in rows])

    # ------------------------------------------------------------------ queries
    def runs(self) -> list[dict[str, Any]]:
        """Every run, newest first, with its units recorded so far."""
        rows = self._conn.execute(
            "SELECT r.id, r.kind, r.created, r.finished, r.status, r.seed, r.config, r.units_total, "
            "(SELECT COUNT(*) FROM units u WHERE u.run_id = r.id) FROM runs r ORDER BY r.id DESC").fetchall()
        return [{"id": r[0], "kind": r[1], "created": r[2], "finished": r[3], "status": r[4], "seed": r[5],
                 "config": json.loads(r[6]), "units_total": r[7], "units_done": r[8]} for r in rows]

    def run(self, run_id: int) -> dict[str, Any]:
        """One run: its row, environment, units and outcomes counted, and total time."""
        row = self._conn.execute("SELECT environment FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise ValueError(f"run_id: no run {run_id} in {self.path}")
        info = next(r for r in self.runs() if r["id"] == run_id)
        n_out, time_s = self._conn.execute(
            "SELECT (SELECT COUNT(*) FROM outcomes WHERE run_id = ?), (SELECT COALESCE(SUM(time_s), 0) FROM units "
            "WHERE run_id = ?)", (run_id, run_id)).fetchone()
        return {**info, "environment": json.loads(row[0]), "outcomes": n_out, "time_s": time_s}

    def models(self) -> list[dict[str, Any]]:
        """Every registered model (name, sha256, dataset, checkpoint, architecture, recipe)."""
        rows = self._conn.execute("SELECT name, sha256, dataset, checkpoint, architecture, recipe FROM models "
                                  "ORDER BY id").fetchall()
        return [{"name": r[0], "sha256": r[1], "dataset": r[2], "checkpoint": r[3], "architecture": r[4],
                 "recipe": None if r[5] is None else json.loads(r[5])} for r in rows]

    def timings(self, run_id: int) -> list[dict[str, Any]]:
        """Per unit: model, source, attack, norm, eps, batch, points, time_s, queries, steps."""
        rows = self._conn.execute(
            "SELECT m.name, s.name, a.name, t.norm, t.eps, u.batch, u.n_points, u.time_s, u.queries, u.steps "
            "FROM units u JOIN models m ON m.id = u.model_id JOIN models s ON s.id = u.source_id "
            "JOIN attacks a ON a.id = u.attack_id JOIN threats t ON t.id = u.threat_id WHERE u.run_id = ? "
            "ORDER BY u.id", (run_id,)).fetchall()
        keys = ("model", "source", "attack", "norm", "eps", "batch", "n_points", "time_s", "queries", "steps")
        return [dict(zip(keys, r)) for r in rows]

    def outcomes(self, runs: int | Sequence[int] | None = None, *, model: str | None = None,
                 source: str | None = None, attack: str | None = None, norm: str | None = None,
                 eps: float | None = _ANY) -> list[Outcomes]:
        """Per-sample outcomes, one :class:`Outcomes` per series, filtered by run id(s), model
        name, source model name, attack name, norm and eps (None selects minimum-norm series)."""
        where, args = [], []
        if runs is not None:
            ids = [runs] if isinstance(runs, int) else list(runs)
            where.append(f"o.run_id IN ({','.join('?' * len(ids))})")
            args += ids
        for column, value in (("m.name", model), ("s.name", source), ("a.name", attack),
                              ("t.norm", None if norm is None else canonical_norm(norm))):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if eps is not _ANY:
            where.append("t.eps IS ?")
            args.append(None if eps is None else float(eps))
        sql = ("SELECT o.run_id, o.model_id, o.source_id, o.attack_id, o.threat_id, o.point_set_id, o.point, "
               "p.test_index, p.label, o.clean_correct, o.success, o.robust, o.clean_pred, o.adv_pred, "
               "o.l0, o.l1, o.l2, o.linf, o.queries FROM outcomes o "
               "JOIN models m ON m.id = o.model_id JOIN models s ON s.id = o.source_id "
               "JOIN attacks a ON a.id = o.attack_id JOIN threats t ON t.id = o.threat_id "
               "JOIN points p ON p.point_set_id = o.point_set_id AND p.point = o.point"
               + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY o.run_id, o.model_id, o.source_id, o.attack_id, o.threat_id, o.point_set_id, o.point")
        groups: dict[tuple, list[tuple]] = defaultdict(list)
        for row in self._conn.execute(sql, args):
            groups[row[:6]].append(row[6:])
        return [self._series(key, rows) for key, rows in groups.items()]

    def _series(self, key: tuple, rows: list[tuple]) -> Outcomes:
        run_id, model_id, source_id, attack_id, threat_id, point_set_id = key
        c = self._conn
        kind, seed = c.execute("SELECT kind, seed FROM runs WHERE id = ?", (run_id,)).fetchone()
        model, model_ds, model_sha = c.execute("SELECT name, dataset, sha256 FROM models WHERE id = ?",
                                               (model_id,)).fetchone()
        source, source_ds = c.execute("SELECT name, dataset FROM models WHERE id = ?", (source_id,)).fetchone()
        attack, akind, params, parent = c.execute(
            "SELECT a.name, a.kind, a.params, p.name FROM attacks a LEFT JOIN attacks p ON p.id = a.parent_id "
            "WHERE a.id = ?", (attack_id,)).fetchone()
        norm, eps = c.execute("SELECT norm, eps FROM threats WHERE id = ?", (threat_id,)).fetchone()
        ps = c.execute("SELECT dataset, split, selection, n, seed, source_size FROM point_sets WHERE id = ?",
                       (point_set_id,)).fetchone()
        time_s, total_queries = c.execute(
            "SELECT COALESCE(SUM(time_s), 0), COALESCE(SUM(queries), 0) FROM units WHERE run_id = ? AND model_id = ? "
            "AND source_id = ? AND attack_id = ? AND threat_id = ? AND point_set_id = ?", key).fetchone()
        cols = list(zip(*rows))
        ints = lambda i: torch.tensor(cols[i], dtype=torch.int64)  # noqa: E731
        queries = None if any(q is None for q in cols[12]) else ints(12)
        return Outcomes(
            run_id=run_id, run_kind=kind, run_seed=seed, model=model, model_sha256=model_sha, model_dataset=model_ds,
            source=source,
            source_dataset=source_ds, attack=attack, attack_kind=akind, attack_params=json.loads(params),
            parent=parent, norm=norm, eps=eps, point_set_id=point_set_id,
            points=dict(zip(("dataset", "split", "selection", "n", "seed", "source_size"), ps)),
            point=ints(0), test_index=ints(1), label=ints(2), clean_correct=ints(3).bool(), success=ints(4).bool(),
            robust=ints(5).bool(), clean_pred=ints(6), adv_pred=ints(7),
            norms={name: torch.tensor(cols[8 + i], dtype=torch.float64) for i, name in enumerate(NORM_NAMES)},
            queries=queries, time_s=float(time_s), total_queries=int(total_queries))
