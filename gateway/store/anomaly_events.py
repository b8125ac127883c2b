"""Anomaly events in SQLite (table ``anomaly_events``, migration 3 of ``gateway.store.schema``),
and how far the detector has scored each device (``anomaly_progress``, migration 4).

The gateway's detector writes them (``AnomalyEventLog.open(path)``, a connection of its own
from ``gateway.store.db``: in WAL mode it writes beside the ingest writer, waiting on the
busy timeout);
the API and Home Assistant read them (``readonly=True``). An event is inserted when its
first flag is seen and updated while it grows, so an open incident is visible at once.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from gateway.store.db import connect
from gateway.store.errors import StoreError, translate

EVENTS_SCHEMA = 3  # the migration that made the events table
COLUMNS = ("id", "device", "start", "end", "peak", "channels", "flags", "kind", "open",
           "model_version")


class AnomalyEventLog:
    """Insert/update and list anomaly events; one connection, safe across threads."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self.path = path
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: Path | str, *, readonly: bool = False,
             busy_timeout_ms: int = 5000) -> AnomalyEventLog:
        """The events in the database at ``path``, which must exist (a writer migrates it;
        a reader needs schema 3, where the events began)."""
        path = Path(path)
        if not path.exists():
            raise StoreError(f"no database at {str(path)!r}")
        return cls(connect(path, readonly=readonly, busy_timeout_ms=busy_timeout_ms,
                           min_version=EVENTS_SCHEMA), path)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> AnomalyEventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def save(self, event: Any, model_version: int | None = None) -> int:
        """Insert ``event`` (an ``AnomalyEvent``) or update it by its ``id``; returns the id."""
        row = (event.device, float(event.start), float(event.end), float(event.peak),
               json.dumps(list(event.channels)), int(event.flags), str(event.kind),
               int(bool(event.open)), model_version, time.time())
        with self._lock:
            try:
                if event.id is None:
                    cur = self._conn.execute(
                        "INSERT INTO anomaly_events (device, start, end, peak, channels, flags,"
                        " kind, open, model_version, updated) VALUES (?,?,?,?,?,?,?,?,?,?)", row)
                    event.id = int(cur.lastrowid or 0)
                else:
                    self._conn.execute(
                        "UPDATE anomaly_events SET device=?, start=?, end=?, peak=?, channels=?,"
                        " flags=?, kind=?, open=?, model_version=?, updated=? WHERE id=?",
                        (*row, int(event.id)))
            except sqlite3.Error as exc:
                raise translate(exc, self.path, "saving an anomaly event") from exc
        return int(event.id)

    def scored_until(self, device: str) -> float | None:
        """The time of the newest slot the detector has scored for ``device``, if any."""
        with self._lock:
            try:
                row = self._conn.execute(
                    "SELECT scored_until FROM anomaly_progress WHERE device = ?", (device,)
                ).fetchone()
            except sqlite3.Error as exc:
                raise translate(exc, self.path, "reading the detector's progress") from exc
        return None if row is None else float(row[0])

    def set_scored_until(self, device: str, t: float) -> None:
        with self._lock:
            try:
                self._conn.execute(
                    "INSERT INTO anomaly_progress (device, scored_until) VALUES (?, ?)"
                    " ON CONFLICT(device) DO UPDATE SET scored_until = excluded.scored_until",
                    (device, float(t)))
            except sqlite3.Error as exc:
                raise translate(exc, self.path, "saving the detector's progress") from exc

    def close_open(self, device: str) -> int:
        """Mark a device's open events closed (the detector restarted: they cannot grow)."""
        with self._lock:
            try:
                cur = self._conn.execute(
                    "UPDATE anomaly_events SET open = 0, updated = ? WHERE device = ? AND open = 1",
                    (time.time(), device))
            except sqlite3.Error as exc:
                raise translate(exc, self.path, "closing anomaly events") from exc
        return int(cur.rowcount)

    def events(self, device: str, *, limit: int = 100, since: float | None = None
               ) -> list[dict[str, Any]]:
        """A device's events, newest first; ``since`` keeps those ending at or after it."""
        sql = f"SELECT {', '.join(COLUMNS)} FROM anomaly_events WHERE device = ?"
        params: list[Any] = [device]
        if since is not None:
            sql += " AND end >= ?"
            params.append(float(since))
        sql += " ORDER BY start DESC, id DESC LIMIT ?"
        params.append(int(limit))
        with self._lock:
            try:
                rows = self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise translate(exc, self.path, "reading anomaly events") from exc
        out = []
        for row in rows:
            doc = dict(zip(COLUMNS, row, strict=True))
            doc["channels"] = json.loads(doc["channels"])
            doc["open"] = bool(doc["open"])
            out.append(doc)
        return out

    def last_end(self, device: str) -> float | None:
        """End of the device's latest event (where a restarted detector resumes), or None."""
        with self._lock:
            try:
                row = self._conn.execute(
                    "SELECT MAX(end) FROM anomaly_events WHERE device = ?", (device,)).fetchone()
            except sqlite3.Error as exc:
                raise translate(exc, self.path, "reading anomaly events") from exc
        return None if row is None or row[0] is None else float(row[0])

    def has_open(self, device: str) -> bool:
        with self._lock:
            try:
                row = self._conn.execute(
                    "SELECT 1 FROM anomaly_events WHERE device = ? AND open = 1 LIMIT 1",
                    (device,)).fetchone()
            except sqlite3.Error as exc:
                raise translate(exc, self.path, "reading anomaly events") from exc
        return row is not None
