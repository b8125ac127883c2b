"""Every table of the database file, created and migrated in order, recorded in
``schema_version``: the one migration system (``gateway.store.db.connect`` runs it).

Each migration is a list of statements, or a function of the connection where a step
depends on what the file holds, run in one transaction together with the row that
records it, so a crash leaves the database at a whole version. Add a migration by
appending to MIGRATIONS; never edit a released one.

Readings are one row per record keyed (device, boot, seq) in a WITHOUT ROWID
table: the key is the de-duplication rule, and the values of all channels sit
in one float32 BLOB (big-endian, the wire's own order, so binary payloads are
stored without converting) with a channel-set id naming the columns.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable

Migration = list[str] | Callable[[sqlite3.Connection], None]

PROMOTED = "promoted"  # a model version's status (gateway.learning.registry)
REGISTRY_SCHEMA = 3  # the newest ``learning_schema`` version migration 5 takes over


def _model_registry(conn: sqlite3.Connection) -> None:
    """5: the model registry's tables, which kept their own version (``learning_schema``,
    1 to 3) until then: created where absent, brought to registry schema 3 where older
    (the ``status`` and ``reason`` columns, no NULL status: every version of schema 1 was
    served, so it reads as promoted), and that version table dropped."""
    tables = {str(r[0]) for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "learning_schema" in tables:
        row = conn.execute(
            "SELECT version FROM learning_schema WHERE component = 'registry'").fetchone()
        if row is not None and int(row[0]) > REGISTRY_SCHEMA:
            raise ValueError(f"model registry schema {row[0]} is newer than this code "
                             f"({REGISTRY_SCHEMA})")
    conn.execute("""CREATE TABLE IF NOT EXISTS model_versions (
        version INTEGER PRIMARY KEY AUTOINCREMENT,
        device TEXT NOT NULL,
        task TEXT NOT NULL,
        created REAL NOT NULL,
        data_start REAL NOT NULL,
        data_end REAL NOT NULL,
        readings INTEGER NOT NULL,
        samples INTEGER NOT NULL,
        metrics TEXT NOT NULL,
        metadata TEXT NOT NULL,
        weights BLOB NOT NULL,
        parent_version INTEGER,
        weights_cid TEXT,
        entry_cid TEXT,
        status TEXT,
        reason TEXT
    )""")
    columns = {str(r[1]) for r in conn.execute("PRAGMA table_info(model_versions)")}
    for name in ("status", "reason"):
        if name not in columns:
            conn.execute(f"ALTER TABLE model_versions ADD COLUMN {name} TEXT")
    conn.execute("UPDATE model_versions SET status = ? WHERE status IS NULL", (PROMOTED,))
    conn.execute("CREATE INDEX IF NOT EXISTS model_versions_device "
                 "ON model_versions (device, task, version)")
    conn.execute("CREATE INDEX IF NOT EXISTS model_versions_status "
                 "ON model_versions (device, status, task, version)")
    conn.execute("CREATE INDEX IF NOT EXISTS model_versions_newest "
                 "ON model_versions (status, version)")
    # versions dropped by model-version retention, per device (their numbers stay counted)
    conn.execute("CREATE TABLE IF NOT EXISTS model_versions_pruned "
                 "(device TEXT PRIMARY KEY, versions INTEGER NOT NULL)")
    conn.execute("DROP TABLE IF EXISTS learning_schema")


MIGRATIONS: list[Migration] = [
    # 1: registry, channel sets, readings, boots
    [
        """CREATE TABLE devices (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            registered REAL NOT NULL,
            source TEXT NOT NULL,
            online INTEGER NOT NULL DEFAULT 0,
            last_seen REAL,
            firmware TEXT,
            status TEXT NOT NULL DEFAULT '{}',
            status_at REAL,
            stored INTEGER NOT NULL DEFAULT 0,
            accepted INTEGER NOT NULL DEFAULT 0,
            duplicates INTEGER NOT NULL DEFAULT 0,
            rejected INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE TABLE channel_sets (id INTEGER PRIMARY KEY, names TEXT NOT NULL UNIQUE)",
        """CREATE TABLE readings (
            device INTEGER NOT NULL,
            boot INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            ts REAL NOT NULL,
            cset INTEGER NOT NULL,
            vals BLOB NOT NULL,
            anomaly INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (device, boot, seq)
        ) WITHOUT ROWID""",
        "CREATE INDEX readings_by_time ON readings (device, ts)",
        """CREATE TABLE boots (
            device INTEGER NOT NULL,
            boot INTEGER NOT NULL,
            first_seen REAL NOT NULL,
            PRIMARY KEY (device, boot)
        ) WITHOUT ROWID""",
    ],
    # 2: operator-facing quarantine of rejected payloads and global counters
    [
        """CREATE TABLE quarantine (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            time REAL NOT NULL,
            topic TEXT NOT NULL,
            device TEXT,
            reason TEXT NOT NULL,
            detail TEXT NOT NULL,
            size INTEGER NOT NULL,
            head BLOB NOT NULL
        )""",
        "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
    ],
    # 3: anomaly events (consecutive flags of the gateway's detector merged, one per incident)
    [
        """CREATE TABLE anomaly_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            device TEXT NOT NULL,
            start REAL NOT NULL,
            end REAL NOT NULL,
            peak REAL NOT NULL,
            channels TEXT NOT NULL,
            flags INTEGER NOT NULL,
            kind TEXT NOT NULL,
            open INTEGER NOT NULL,
            model_version INTEGER,
            updated REAL NOT NULL
        )""",
        "CREATE INDEX anomaly_events_by_device ON anomaly_events (device, start)",
    ],
    # 4: how far the detector has scored each device, so a restart resumes there
    [
        "CREATE TABLE anomaly_progress (device TEXT PRIMARY KEY, scored_until REAL NOT NULL)"
        " WITHOUT ROWID",
    ],
    # 5: the model registry (model versions, their retention count), once versioned apart
    _model_registry,
]

LATEST = len(MIGRATIONS)


def current_version(conn: sqlite3.Connection) -> int:
    """The version a database is at; 0 for an empty file."""
    row = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if row is None:
        return 0
    (version,) = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
    return int(version)


def migrate(conn: sqlite3.Connection, target: int = LATEST) -> int:
    """Bring ``conn`` (autocommit mode) up to ``target``; return the version reached."""
    version = current_version(conn)
    if version > LATEST:
        raise ValueError(f"database schema version {version} is newer than this code ({LATEST})")
    if version == 0:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version "
                "(version INTEGER PRIMARY KEY, applied REAL NOT NULL)"
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    while version < target:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # another process may have migrated meanwhile
            version = current_version(conn)
            if version >= target:
                conn.execute("COMMIT")
                break
            step = MIGRATIONS[version]
            if callable(step):
                step(conn)
            else:
                for statement in step:
                    conn.execute(statement)
            version += 1
            conn.execute(
                "INSERT INTO schema_version (version, applied) VALUES (?, ?)",
                (version, time.time()),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return version
