"""Connections to the gateway's database file, the one way every module opens it.

One SQLite file holds every table (readings, devices, quarantine, anomaly events, model
versions); ``gateway.store.schema`` creates and migrates them all. A writer connection is
in WAL mode, so readers in other threads and processes read while it commits, with
``synchronous`` as configured (NORMAL loses at most the last commits on power loss, never
corrupts; FULL fsyncs every commit); opening one brings the schema to the latest version.
A reader (``readonly``) never writes, so it refuses a database that is not migrated yet.
Connections are in autocommit mode: writes that belong together go in ``transaction``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gateway.errors import StoreError
from gateway.store import schema
from gateway.store.errors import translate
from gateway.store.transaction import transaction

__all__ = ["SYNCHRONOUS", "connect", "transaction"]

SYNCHRONOUS = ("NORMAL", "FULL")
MEMORY = ":memory:"


def connect(path: Path | str, *, readonly: bool = False, synchronous: str = "NORMAL",
            busy_timeout_ms: int = 5000, cache_kb: int | None = None,
            min_version: int = schema.LATEST) -> sqlite3.Connection:
    """A connection to the database at ``path`` (``":memory:"`` for a private one).

    A writer creates the file and its directory if needed and migrates the schema; a
    reader needs a database at ``min_version`` at least (and not newer than this code).
    ``cache_kb``: the page cache in KiB (SQLite's default when None). sqlite3 errors come
    out as StoreError naming the file.
    """
    if synchronous not in SYNCHRONOUS:
        raise StoreError(f"synchronous {synchronous!r} is not one of {', '.join(SYNCHRONOUS)}")
    memory = str(path) == MEMORY
    path = Path(path)
    conn: sqlite3.Connection | None = None
    try:
        if readonly:
            if memory or not path.exists():
                raise StoreError(f"no database at {str(path)!r}")
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None,
                                   check_same_thread=False, timeout=busy_timeout_ms / 1000)
        else:
            if not memory:
                path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(MEMORY if memory else path, isolation_level=None,
                                   check_same_thread=False, timeout=busy_timeout_ms / 1000)
            if not memory:
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StoreError(f"database {str(path)!r} refused WAL mode (got {mode!r})")
            conn.execute(f"PRAGMA synchronous={synchronous}")
            conn.execute("PRAGMA temp_store=MEMORY")
        if cache_kb is not None:
            conn.execute(f"PRAGMA cache_size={-abs(int(cache_kb))}")
        conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        if readonly:
            _check_version(conn, path, min_version)
        else:
            try:
                schema.migrate(conn)
            except ValueError as exc:
                raise StoreError(f"database {str(path)!r}: {exc}") from exc
    except BaseException as exc:
        if conn is not None:  # a refused open must not leak the connection
            conn.close()
        if isinstance(exc, sqlite3.Error):
            raise translate(exc, path, "opening the database") from exc
        raise
    return conn


def _check_version(conn: sqlite3.Connection, path: Path, need: int) -> None:
    version = schema.current_version(conn)
    if version > schema.LATEST:
        raise StoreError(f"database {str(path)!r} has schema version {version},"
                         f" newer than this code ({schema.LATEST})")
    if version < need:
        raise StoreError(f"database {str(path)!r} has schema version {version};"
                         f" start the gateway once to migrate it to {schema.LATEST}")
