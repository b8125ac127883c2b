"""Durable storage of readings, the device registry and the quarantine (SQLite, WAL).

``Store.open(path)`` for the writer; ``Store.open(path, readonly=True)`` for
other processes (status, API) while the service runs.
"""

from gateway.store.changes import Changes, CommitResult, ReadingRow, Reject, StatusUpdate
from gateway.store.errors import StoreError, StoreFull, StoreUnavailable
from gateway.store.health import health_path, read_health, write_health
from gateway.store.models import DeviceInfo, Sample, Series
from gateway.store.sqlite_store import VALUE_DTYPE, Store, pack_values

__all__ = [
    "VALUE_DTYPE",
    "Changes",
    "CommitResult",
    "DeviceInfo",
    "ReadingRow",
    "Reject",
    "Sample",
    "Series",
    "StatusUpdate",
    "Store",
    "StoreError",
    "StoreFull",
    "StoreUnavailable",
    "health_path",
    "pack_values",
    "read_health",
    "write_health",
]
