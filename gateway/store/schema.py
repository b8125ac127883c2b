"""Schema migrations, applied in order and recorded in ``schema_version``.

Each migration is a list of statements run in one transaction together with
the row that records it, so a crash leaves the database at a whole version.
Add a migration by appending to MIGRATIONS; never edit a released one.

Readings are one row per record keyed (device, boot, seq) in a WITHOUT ROWID
table: the key is the de-duplication rule, and the values of all channels sit
in one float32 BLOB (big-endian, the wire's own order, so binary payloads are
stored without converting) with a channel-set id naming the columns.
"""

from __future__ import annotations

import sqlite3
import time

MIGRATIONS: list[list[str]] = [
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
            for statement in MIGRATIONS[version]:
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
