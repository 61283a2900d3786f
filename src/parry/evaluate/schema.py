"""The results store's SQL schema, its version, and creating, checking and migrating it.

The version lives twice, in ``PRAGMA user_version`` and in ``meta.schema_version``; both
must agree. A store of an older version is migrated step by step with :data:`MIGRATIONS`
(one function per step, ``version -> version + 1``, all in one transaction) or refused
when a step is missing; a store of a newer version is always refused.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from typing import Callable

SCHEMA_VERSION = 1

#: ``MIGRATIONS[v]`` upgrades a store of schema version ``v`` to ``v + 1`` in place.
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {}

SCHEMA = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE runs (
    id            INTEGER PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('grid', 'transfer')),
    created       TEXT NOT NULL,
    finished      TEXT,
    status        TEXT NOT NULL CHECK (status IN ('running', 'finished')),
    seed          INTEGER NOT NULL,
    config        TEXT NOT NULL,
    config_sha256 TEXT NOT NULL,
    environment   TEXT NOT NULL,
    units_total   INTEGER NOT NULL CHECK (units_total >= 0)
);
CREATE INDEX runs_config ON runs (config_sha256);

CREATE TABLE models (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    dataset      TEXT NOT NULL,
    checkpoint   TEXT,
    architecture TEXT,
    recipe       TEXT,
    UNIQUE (name, sha256)
);

CREATE TABLE attacks (
    id        INTEGER PRIMARY KEY,
    name      TEXT NOT NULL,
    kind      TEXT NOT NULL CHECK (kind IN ('attack', 'ensemble', 'stage')),
    params    TEXT NOT NULL,
    sha256    TEXT NOT NULL UNIQUE,
    parent_id INTEGER REFERENCES attacks (id)
);

CREATE TABLE threats (
    id   INTEGER PRIMARY KEY,
    norm TEXT NOT NULL CHECK (norm IN ('linf', 'l2', 'l1', 'l0')),
    eps  REAL CHECK (eps IS NULL OR eps >= 0),
    low  REAL NOT NULL,
    high REAL NOT NULL CHECK (high > low)
);
CREATE UNIQUE INDEX threats_key ON threats (norm, IFNULL(eps, -1.0), low, high);

CREATE TABLE point_sets (
    id             INTEGER PRIMARY KEY,
    dataset        TEXT NOT NULL,
    split          TEXT NOT NULL,
    selection      TEXT NOT NULL CHECK (selection IN ('spread', 'permutation', 'given')),
    n              INTEGER NOT NULL CHECK (n > 0),
    seed           INTEGER,
    source_size    INTEGER,
    indices_sha256 TEXT NOT NULL,
    UNIQUE (dataset, split, selection, indices_sha256)
);

CREATE TABLE points (
    point_set_id INTEGER NOT NULL REFERENCES point_sets (id),
    point        INTEGER NOT NULL CHECK (point >= 0),
    test_index   INTEGER NOT NULL CHECK (test_index >= 0),
    label        INTEGER NOT NULL,
    PRIMARY KEY (point_set_id, point)
) WITHOUT ROWID;

CREATE TABLE units (
    id           INTEGER PRIMARY KEY,
    run_id       INTEGER NOT NULL REFERENCES runs (id),
    model_id     INTEGER NOT NULL REFERENCES models (id),
    source_id    INTEGER NOT NULL REFERENCES models (id),
    attack_id    INTEGER NOT NULL REFERENCES attacks (id),
    threat_id    INTEGER NOT NULL REFERENCES threats (id),
    point_set_id INTEGER NOT NULL REFERENCES point_sets (id),
    batch        INTEGER NOT NULL CHECK (batch >= 0),
    first_point  INTEGER NOT NULL CHECK (first_point >= 0),
    n_points     INTEGER NOT NULL CHECK (n_points > 0),
    time_s       REAL NOT NULL,
    queries      INTEGER NOT NULL,
    steps        INTEGER NOT NULL,
    recorded     TEXT NOT NULL,
    UNIQUE (run_id, model_id, source_id, attack_id, threat_id, point_set_id, batch)
);

CREATE TABLE outcomes (
    run_id        INTEGER NOT NULL,
    model_id      INTEGER NOT NULL,
    source_id     INTEGER NOT NULL,
    attack_id     INTEGER NOT NULL,
    threat_id     INTEGER NOT NULL,
    point_set_id  INTEGER NOT NULL,
    point         INTEGER NOT NULL,
    unit_id       INTEGER NOT NULL REFERENCES units (id),
    clean_correct INTEGER NOT NULL CHECK (clean_correct IN (0, 1)),
    success       INTEGER NOT NULL CHECK (success IN (0, 1)),
    robust        INTEGER NOT NULL CHECK (robust IN (0, 1)),
    clean_pred    INTEGER NOT NULL,
    adv_pred      INTEGER NOT NULL,
    l0            REAL NOT NULL,
    l1            REAL NOT NULL,
    l2            REAL NOT NULL,
    linf          REAL NOT NULL,
    queries       INTEGER,
    PRIMARY KEY (run_id, model_id, source_id, attack_id, threat_id, point_set_id, point),
    FOREIGN KEY (point_set_id, point) REFERENCES points (point_set_id, point)
) WITHOUT ROWID;
CREATE INDEX outcomes_unit ON outcomes (unit_id);

CREATE VIEW outcome_rows AS
SELECT o.run_id, m.name AS model, s.name AS source, a.name AS attack, t.norm, t.eps,
       o.point_set_id, o.point, p.test_index, p.label, o.clean_correct, o.success, o.robust,
       o.clean_pred, o.adv_pred, o.l0, o.l1, o.l2, o.linf, o.queries
FROM outcomes o
JOIN models m ON m.id = o.model_id
JOIN models s ON s.id = o.source_id
JOIN attacks a ON a.id = o.attack_id
JOIN threats t ON t.id = o.threat_id
JOIN points p ON p.point_set_id = o.point_set_id AND p.point = o.point;
"""


class StoreError(ValueError):
    """A results store that cannot be used: not a store, a schema version this parry cannot
    read, or a run that cannot be resumed."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def found_version(conn: sqlite3.Connection, path: str) -> int | None:
    """The store's schema version; None for an empty database. Refuses a file that is not a
    store or whose two version records disagree."""
    tables = _tables(conn)
    if not tables:
        return None
    if "meta" not in tables:
        raise StoreError(f"store: {path} is an SQLite database but not a parry results store (no meta table)")
    row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    user_version = conn.execute("PRAGMA user_version").fetchone()[0]
    if row is None or int(row[0]) != user_version:
        raise StoreError(f"store: {path} records schema version {None if row is None else row[0]} in its meta "
                         f"table but {user_version} in PRAGMA user_version; the file is damaged")
    return user_version


def create(conn: sqlite3.Connection) -> None:
    """Create the current schema in an empty database (inside the caller's transaction)."""
    for statement in SCHEMA.split(";"):  # not executescript: it would commit the transaction
        if statement.strip():
            conn.execute(statement)
    conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                     [("schema_version", str(SCHEMA_VERSION)), ("created", _now())])
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def upgrade(conn: sqlite3.Connection, version: int, path: str, migrate: bool) -> None:
    """Bring a store of ``version`` to :data:`SCHEMA_VERSION` (inside the caller's transaction),
    or raise :class:`StoreError` saying which version was found and which is expected."""
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise StoreError(f"store: {path} has schema version {version}, newer than the version "
                         f"{SCHEMA_VERSION} this parry reads; upgrade parry to read it")
    missing = [v for v in range(version, SCHEMA_VERSION) if v not in MIGRATIONS]
    if missing or not migrate:
        why = f"no migration exists from version {missing[0]}" if missing else "migration was not allowed"
        raise StoreError(f"store: {path} has schema version {version}, expected {SCHEMA_VERSION}; {why}. "
                         "Keep using the parry that wrote it, or start a new store file")
    for v in range(version, SCHEMA_VERSION):
        MIGRATIONS[v](conn)
        conn.execute(f"PRAGMA user_version = {v + 1}")
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(v + 1),))
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('migrated', ?)", (_now(),))
