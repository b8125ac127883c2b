"""sqlite3 errors translated into the gateway's tree (``gateway.errors``) at the boundary.

    StoreError                 any store failure (bad path, schema too new, misuse)
     +-- StoreUnavailable      the database cannot be written right now (locked, read-only,
          |                    I/O error); retrying later may succeed
          +-- StoreFull        the disk (or the configured size cap) is full
"""

from __future__ import annotations

import sqlite3

from gateway.errors import StoreError, StoreFull, StoreUnavailable

__all__ = ["StoreError", "StoreFull", "StoreUnavailable", "translate"]

_TRANSIENT = (
    sqlite3.SQLITE_BUSY,
    sqlite3.SQLITE_LOCKED,
    sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_PROTOCOL,
)


def translate(exc: sqlite3.Error, path: object, action: str) -> StoreError:
    """Map a sqlite3 error to the project's hierarchy, naming the file and the action."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    message = f"{action} on {str(path)!r} failed: {exc}"
    if primary == sqlite3.SQLITE_FULL:
        return StoreFull(message)
    if primary in _TRANSIENT or isinstance(exc, sqlite3.OperationalError):
        return StoreUnavailable(message)
    return StoreError(message)
