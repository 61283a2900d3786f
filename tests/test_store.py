"""The results store: schema and versions, idempotent registration and unit writes, rollback."""

import sqlite3

import pytest
import torch

from parry.evaluate import (SCHEMA_VERSION, EvalPoints, OutcomeBatch, ResultsStore, StoreError, UnitKey,
                            UnitRecord)
from parry.evaluate import schema as schema_module
from parry.evaluate.environment import environment


def _points(n=6):
    g = torch.Generator().manual_seed(0)
    return EvalPoints(torch.rand(n, 1, 4, 4, generator=g), torch.randint(0, 3, (n,), generator=g),
                      torch.arange(n) * 10, "toy", selection="spread", source_size=10 * n)


def _batch(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    clean = torch.rand(n, generator=g) > 0.3
    robust = clean & (torch.rand(n, generator=g) > 0.5)
    norms = {k: torch.rand(n, generator=g, dtype=torch.float64) for k in ("l0", "l1", "l2", "linf")}
    pred = torch.randint(0, 3, (n,), generator=g)
    return OutcomeBatch(clean, ~robust, robust, pred, (pred + (~robust).long()) % 3, norms,
                        torch.arange(n) * 7)


@pytest.fixture
def store(tmp_path):
    with ResultsStore(tmp_path / "results.sqlite") as s:
        yield s


def _ids(store, points):
    model = store.add_model("m", "ab" * 32, "toy")
    attack = store.add_attack("pgd", {"steps": 3})
    threat = store.add_threat("linf", 0.1)
    pset = store.add_point_set(points)
    run, _ = store.start_run("grid", {"x": 1}, 0, environment(), 2)
    return run, model, attack, threat, pset


def _count(store, table):
    return store._conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def test_new_store_is_versioned_and_in_wal_mode(tmp_path):
    path = tmp_path / "results.sqlite"
    ResultsStore(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    ResultsStore(path).close()  # reopening an up-to-date store changes nothing


def test_registration_is_idempotent(store):
    points = _points()
    assert store.add_model("m", "ab" * 32, "toy") == store.add_model("m", "ab" * 32, "toy")
    assert store.add_model("m", "cd" * 32, "toy") != store.add_model("m", "ab" * 32, "toy")
    with pytest.raises(ValueError, match="dataset"):
        store.add_model("m", "ab" * 32, "other")
    # canonical JSON: key order does not matter, values do
    assert store.add_attack("pgd", {"steps": 3, "loss": "ce"}) == store.add_attack("pgd", {"loss": "ce", "steps": 3})
    assert store.add_attack("pgd", {"steps": 3, "loss": "ce"}) != store.add_attack("pgd", {"steps": 4, "loss": "ce"})
    # eps None (minimum norm) is deduplicated too, despite NULL in a UNIQUE index
    assert store.add_threat("linf", None) == store.add_threat("inf", None) != store.add_threat("linf", 0.1)
    assert store.add_point_set(points) == store.add_point_set(points)
    assert _count(store, "points") == points.n
    with pytest.raises(ValueError, match="eps"):
        store.add_threat("l2", -1.0)


def test_units_are_written_once_and_read_back_exactly(store):
    points = _points()
    run, model, attack, threat, pset = _ids(store, points)
    records = [UnitRecord(UnitKey(model, model, attack, threat, pset, b), 3 * b, _batch(3, b), 0.5, 30, 3)
               for b in (0, 1)]
    assert store.record_units(run, records) == 2
    assert store.record_units(run, records) == 0  # a resumed run writes nothing twice
    assert store.record_units(run, records[:1]) == 0
    assert _count(store, "units") == 2 and _count(store, "outcomes") == points.n
    [series] = store.outcomes(run, model="m", attack="pgd", norm="linf", eps=0.1)
    assert series.complete and series.n == points.n
    assert torch.equal(series.test_index, points.indices) and torch.equal(series.label, points.y)
    for name in ("clean_correct", "success", "robust", "clean_pred", "adv_pred", "queries"):
        expected = torch.cat([getattr(r.outcomes, name) for r in records])
        assert torch.equal(getattr(series, name), expected.to(getattr(series, name).dtype)), name
    for name in ("l0", "l1", "l2", "linf"):
        assert torch.equal(series.norms[name], torch.cat([r.outcomes.norms[name] for r in records]))
    assert series.time_s == 1.0 and series.total_queries == 60
    assert store.outcomes(run, eps=None) == []
    store.finish_run(run)
    assert store.run(run)["status"] == "finished" and store.run(run)["outcomes"] == points.n


def test_overlapping_units_are_refused_by_the_constraints(store):
    points = _points()
    run, model, attack, threat, pset = _ids(store, points)
    store.record_units(run, [UnitRecord(UnitKey(model, model, attack, threat, pset, 0), 0, _batch(3), 0.1, 3)])
    overlapping = UnitRecord(UnitKey(model, model, attack, threat, pset, 1), 2, _batch(3), 0.1, 3)  # point 2 again
    with pytest.raises(sqlite3.IntegrityError):
        store.record_units(run, [overlapping])
    assert _count(store, "units") == 1 and _count(store, "outcomes") == 3


def test_an_exception_mid_transaction_rolls_everything_back(store):
    points = _points()
    run, model, attack, threat, pset = _ids(store, points)
    good = UnitRecord(UnitKey(model, model, attack, threat, pset, 0), 0, _batch(3), 0.1, 3)
    outside = UnitRecord(UnitKey(model, model, attack, threat, pset, 1), 4, _batch(3), 0.1, 3)  # points 4..6, n=6
    with pytest.raises(sqlite3.IntegrityError):  # the second unit violates the points foreign key
        store.record_units(run, [good, outside])
    assert _count(store, "units") == 0 and _count(store, "outcomes") == 0
    with pytest.raises(RuntimeError, match="boom"):
        with store.transaction():
            store.record_units(run, [good])
            store.add_attack("fgsm", {})
            raise RuntimeError("boom")
    assert _count(store, "units") == 0 and _count(store, "outcomes") == 0 and _count(store, "attacks") == 1
    assert store.record_units(run, [good]) == 1  # and the store is usable afterwards


def test_a_failed_nested_write_undoes_only_itself(store):
    with store.transaction():
        kept = store.add_attack("fgsm", {})
        with pytest.raises(RuntimeError):
            with store.transaction():
                store.add_attack("pgd", {})
                raise RuntimeError("inner")
    assert store.add_attack("fgsm", {}) == kept and _count(store, "attacks") == 1


def test_runs_resume_by_configuration_and_environment(store):
    env = environment()
    first, resumed = store.start_run("grid", {"a": 1}, 0, env, 1)
    assert not resumed
    assert store.start_run("grid", {"a": 1}, 0, env, 1) == (first, True)
    assert store.start_run("grid", {"a": 2}, 0, env, 1)[0] != first
    assert store.start_run("grid", {"a": 1}, 0, env, 1, fresh=True)[0] not in (first,)
    with pytest.raises(ValueError, match="another configuration"):
        store.start_run("grid", {"a": 3}, 0, env, 1, run_id=first)
    with pytest.raises(StoreError, match="torch"):
        store.start_run("grid", {"a": 1}, 0, {**env, "torch": "0.0"}, 1, run_id=first)
    with pytest.raises(ValueError, match="units"):
        store.finish_run(first)
    assert [r["id"] for r in store.runs()] == sorted((r["id"] for r in store.runs()), reverse=True)


def _set_version(path, version):
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {version}")
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
    conn.commit()
    conn.close()


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "results.sqlite"
    ResultsStore(path).close()
    _set_version(path, SCHEMA_VERSION + 1)
    with pytest.raises(StoreError, match=f"version {SCHEMA_VERSION + 1}, newer than the version {SCHEMA_VERSION}"):
        ResultsStore(path)


def test_an_older_schema_is_migrated_or_refused(tmp_path, monkeypatch):
    path = tmp_path / "results.sqlite"
    ResultsStore(path).close()
    old = SCHEMA_VERSION - 1
    _set_version(path, old)
    monkeypatch.setattr(schema_module, "MIGRATIONS", {})
    with pytest.raises(StoreError, match=f"schema version {old}, expected {SCHEMA_VERSION}; no migration"):
        ResultsStore(path)

    def step(conn):
        conn.execute("CREATE TABLE notes (text TEXT)")

    monkeypatch.setattr(schema_module, "MIGRATIONS", {old: step})
    with pytest.raises(StoreError, match="not allowed"):
        ResultsStore(path, migrate=False)
    ResultsStore(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
    assert conn.execute("SELECT COUNT(*) FROM notes").fetchone()[0] == 0
    conn.close()


def test_failed_migration_leaves_the_store_untouched(tmp_path, monkeypatch):
    path = tmp_path / "results.sqlite"
    ResultsStore(path).close()
    _set_version(path, SCHEMA_VERSION - 1)

    def broken(conn):
        conn.execute("CREATE TABLE half (x)")
        raise RuntimeError("migration failed")

    monkeypatch.setattr(schema_module, "MIGRATIONS", {SCHEMA_VERSION - 1: broken})
    with pytest.raises(RuntimeError, match="migration failed"):
        ResultsStore(path)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION - 1
    assert conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'half'").fetchone()[0] == 0
    conn.close()


def test_files_that_are_not_stores_are_refused(tmp_path):
    other = tmp_path / "other.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    with pytest.raises(StoreError, match="not a parry results store"):
        ResultsStore(other)
    text = tmp_path / "notes.sqlite"
    text.write_text("hello, this is not a database at all" * 100)
    with pytest.raises(StoreError, match="cannot use .* as an SQLite database"):
        ResultsStore(text)
    with pytest.raises(FileNotFoundError, match="no results store"):
        ResultsStore(tmp_path / "missing.sqlite", create=False)
    damaged = tmp_path / "damaged.sqlite"
    ResultsStore(damaged).close()
    conn = sqlite3.connect(damaged)
    conn.execute("PRAGMA user_version = 7")
    conn.close()
    with pytest.raises(StoreError, match="damaged"):
        ResultsStore(damaged)
