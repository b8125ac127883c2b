"""The SQLite store: readings, device registry, quarantine, counters.

One writer (the ingest writer thread) and any number of read-only readers in
other processes (``status``, the API): WAL mode lets them read while the
writer commits (``gateway.store.db``; docs/ingest.md has the trade-off of
``synchronous`` and the figures).
"""

from __future__ import annotations

import json
import math
import sqlite3
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from gateway.store import schema
from gateway.store.changes import Changes, CommitResult
from gateway.store.db import connect
from gateway.store.errors import StoreError, translate
from gateway.store.health import read_health
from gateway.store.models import DeviceInfo, Sample, Series
from gateway.store.transaction import transaction
from shared.topics import check_device_id

VALUE_DTYPE = np.dtype(">f4")  # the wire's order: binary payload slices are stored as they come
QUARANTINE_HEAD = 64  # bytes of a rejected payload kept for operators
# page caches in KiB: appends touch the newest pages only, and every cache stays full for
# the life of its connection, so they are kept small
WRITER_CACHE_KB = 4000
READER_CACHE_KB = 1000


def pack_values(values: list[float | None]) -> bytes:
    """The BLOB for one record: big-endian float32, NaN for a missing value."""
    return struct.pack(f">{len(values)}f", *[math.nan if v is None else v for v in values])


class Store:
    """Readings keyed (device, boot, seq), stored once; see ``gateway.store`` for the API."""

    def __init__(self, conn: sqlite3.Connection, path: Path, *, readonly: bool,
                 quarantine_rows: int) -> None:
        self._conn = conn
        self.path = path
        self.readonly = readonly
        self.quarantine_rows = quarantine_rows
        self._lock = threading.RLock()
        self._keys: dict[str, int] = {}
        self._csets: dict[tuple[str, ...], int] = {}
        self._cset_names: dict[int, tuple[str, ...]] = {}
        self._closed = False

    # ----------------------------------------------------------------- lifecycle
    @classmethod
    def open(cls, path: Path | str, *, synchronous: str = "NORMAL", readonly: bool = False,
             quarantine_rows: int = 1000, max_size_mb: float = 0.0,
             busy_timeout_ms: int = 5000) -> Store:
        """Open (creating and migrating unless ``readonly``) the database at ``path``."""
        conn = connect(path, readonly=readonly, synchronous=synchronous,
                       busy_timeout_ms=busy_timeout_ms,
                       # one per API worker thread: each page cache fills as the database grows
                       cache_kb=READER_CACHE_KB if readonly else WRITER_CACHE_KB)
        store = cls(conn, Path(path), readonly=readonly, quarantine_rows=quarantine_rows)
        if max_size_mb and not readonly:
            store.set_max_size(max_size_mb)
        return store

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set_max_size(self, megabytes: float) -> None:
        """Cap the database size (0 = no cap); past it, writes raise StoreFull."""
        with self._lock:
            page = self._conn.execute("PRAGMA page_size").fetchone()[0]
            pages = int(megabytes * 1024 * 1024 / page) if megabytes else 1073741823
            self._conn.execute(f"PRAGMA max_page_count={max(pages, 1)}")

    @contextmanager
    def _guard(self, action: str) -> Iterator[sqlite3.Connection]:
        if self._closed:
            raise StoreError(f"store {str(self.path)!r} is closed")
        with self._lock:
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise translate(exc, self.path, action) from exc

    def _write_guard(self, action: str) -> Any:
        if self.readonly:
            raise StoreError(f"store {str(self.path)!r} was opened read-only; cannot {action}")
        return self._guard(action)

    # ----------------------------------------------------------------- registry (write)
    def device_key(self, device_id: str) -> int | None:
        """The integer key of a registered device, or None (looked up afresh on a miss,
        so a device added by another process is seen)."""
        key = self._keys.get(device_id)
        if key is not None:
            return key
        with self._guard("looking up a device") as conn:
            row = conn.execute("SELECT id FROM devices WHERE name = ?", (device_id,)).fetchone()
        if row is None:
            return None
        self._keys[device_id] = int(row[0])
        return int(row[0])

    def register_device(self, device_id: str, *, source: str = "manual",
                        now: float | None = None) -> int:
        """Add ``device_id`` to the registry if absent; return its key."""

        check_device_id(device_id)
        key = self.device_key(device_id)
        if key is not None:
            return key
        with self._write_guard("registering a device") as conn:
            conn.execute(
                "INSERT OR IGNORE INTO devices (name, registered, source) VALUES (?, ?, ?)",
                (device_id, time.time() if now is None else now, source),
            )
        key = self.device_key(device_id)
        assert key is not None
        return key

    def channel_set(self, names: tuple[str, ...]) -> int:
        """The id naming the column order of a BLOB; created on first use."""
        cid = self._csets.get(names)
        if cid is not None:
            return cid
        text = ",".join(names)
        with self._write_guard("recording a channel set") as conn:
            conn.execute("INSERT OR IGNORE INTO channel_sets (names) VALUES (?)", (text,))
            cid = int(conn.execute("SELECT id FROM channel_sets WHERE names = ?",
                                   (text,)).fetchone()[0])
        self._csets[names] = cid
        self._cset_names[cid] = names
        return cid

    def _names_of(self, cset: int) -> tuple[str, ...]:
        names = self._cset_names.get(cset)
        if names is None:
            with self._guard("reading channel sets") as conn:
                for cid, text in conn.execute("SELECT id, names FROM channel_sets"):
                    self._cset_names[int(cid)] = tuple(text.split(","))
            names = self._cset_names[cset]
        return names

    # ----------------------------------------------------------------- group commit
    def commit(self, changes: Changes) -> CommitResult:
        """Apply one group of changes in one transaction; all or nothing.

        Raises StoreUnavailable/StoreFull when the database cannot be written;
        the caller keeps the changes and retries later.
        """
        result = CommitResult()
        with self._write_guard("committing readings") as conn, transaction(conn):
            self._apply(conn, changes, result)
        return result

    def _apply(self, conn: sqlite3.Connection, changes: Changes, result: CommitResult) -> None:
        insert = ("INSERT OR IGNORE INTO readings (device, boot, seq, ts, cset, vals, anomaly)"
                  " VALUES (?, ?, ?, ?, ?, ?, ?)")
        for key, rows in changes.rows.items():
            before = conn.total_changes
            conn.executemany(insert, rows)
            inserted = conn.total_changes - before
            result.inserted[key] = inserted
            result.duplicates[key] = len(rows) - inserted
        if changes.boots:
            conn.executemany(
                "INSERT OR IGNORE INTO boots (device, boot, first_seen) VALUES (?, ?, ?)",
                [(k[0], k[1], t) for k, t in changes.boots.items()],
            )
        updates = []
        for key in set(changes.seen) | set(changes.rows) | set(changes.device_rejects):
            inserted = result.inserted.get(key, 0)
            updates.append((inserted, inserted, result.duplicates.get(key, 0),
                            changes.device_rejects.get(key, 0), changes.seen.get(key), key))
        if updates:
            conn.executemany(
                "UPDATE devices SET stored = stored + ?, accepted = accepted + ?,"
                " duplicates = duplicates + ?, rejected = rejected + ?,"
                " last_seen = MAX(COALESCE(last_seen, 0), COALESCE(?, 0)) WHERE id = ?",
                updates,
            )
        for key, st in changes.statuses.items():
            conn.execute(
                "UPDATE devices SET online = ?, status = ?, status_at = ?,"
                " firmware = COALESCE(?, firmware),"
                " last_seen = MAX(COALESCE(last_seen, 0), ?) WHERE id = ?",
                (int(st.online), st.doc_json, st.time, st.firmware, st.time if st.seen else 0,
                 key),
            )
        counts: dict[str, int] = {}
        held = changes.rejects + changes.flagged if changes.flagged else changes.rejects
        if held:
            conn.executemany(
                "INSERT INTO quarantine (time, topic, device, reason, detail, size, head)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(r.time, r.topic, r.device, r.reason, r.detail[:500], len(r.payload),
                  bytes(r.payload[:QUARANTINE_HEAD])) for r in held],
            )
            conn.execute(
                "DELETE FROM quarantine WHERE id <= (SELECT MAX(id) FROM quarantine) - ?",
                (self.quarantine_rows,),
            )
            for r in changes.rejects:
                counts["rejected"] = counts.get("rejected", 0) + 1
                name = f"rejected.{r.reason}"
                counts[name] = counts.get(name, 0) + 1
        for channel, count in changes.implausible.items():
            counts["implausible"] = counts.get("implausible", 0) + count
            counts[f"implausible.{channel}"] = count
        total_dup = result.total_duplicates
        if total_dup:
            counts["duplicates"] = total_dup
        if counts:
            conn.executemany(
                "INSERT INTO counters (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                list(counts.items()),
            )

    # ----------------------------------------------------------------- retention
    def apply_retention(self, *, now: float | None = None, max_age_s: float = 0.0,
                        max_rows_per_device: int = 0) -> int:
        """Delete readings older than ``max_age_s`` and beyond the newest
        ``max_rows_per_device`` per device; return how many rows went."""
        if not max_age_s and not max_rows_per_device:
            return 0
        now = time.time() if now is None else now
        removed = 0
        with self._write_guard("applying retention") as conn:
            keys = [int(r[0]) for r in conn.execute("SELECT id FROM devices")]
            with transaction(conn):
                for key in keys:
                    gone = 0
                    if max_age_s:
                        before = conn.total_changes
                        conn.execute("DELETE FROM readings WHERE device = ? AND ts < ?",
                                     (key, now - max_age_s))
                        gone += conn.total_changes - before
                    if max_rows_per_device:
                        before = conn.total_changes
                        conn.execute(
                            "DELETE FROM readings WHERE device = ? AND (boot, seq) IN ("
                            " SELECT boot, seq FROM readings WHERE device = ?"
                            " ORDER BY ts DESC, boot DESC, seq DESC LIMIT -1 OFFSET ?)",
                            (key, key, max_rows_per_device),
                        )
                        gone += conn.total_changes - before
                    if gone:
                        conn.execute("UPDATE devices SET stored = stored - ? WHERE id = ?",
                                     (gone, key))
                        removed += gone
        return removed

    # ----------------------------------------------------------------- reads
    def devices(self) -> list[DeviceInfo]:
        with self._guard("reading the device registry") as conn:
            rows = conn.execute(
                "SELECT d.name, d.stored, (SELECT COUNT(*) FROM boots b WHERE b.device = d.id),"
                " d.last_seen, d.online, d.firmware, d.status, d.duplicates, d.rejected,"
                " d.registered FROM devices d ORDER BY d.name"
            ).fetchall()
        return [self._info(row) for row in rows]

    def device(self, device_id: str) -> DeviceInfo | None:
        with self._guard("reading the device registry") as conn:
            row = conn.execute(
                "SELECT d.name, d.stored, (SELECT COUNT(*) FROM boots b WHERE b.device = d.id),"
                " d.last_seen, d.online, d.firmware, d.status, d.duplicates, d.rejected,"
                " d.registered FROM devices d WHERE d.name = ?", (device_id,)
            ).fetchone()
        return None if row is None else self._info(row)

    @staticmethod
    def _info(row: tuple[Any, ...]) -> DeviceInfo:
        name, stored, boots, last_seen, online, firmware, status, dup, rej, registered = row
        try:
            doc = json.loads(status)
        except ValueError:
            doc = {}
        return DeviceInfo(id=name, stored=int(stored), boots=int(boots),
                          last_seen=None if not last_seen else float(last_seen),
                          online=bool(online), firmware=firmware, status=doc,
                          duplicates=int(dup), rejected=int(rej), registered=registered)

    def samples(self, device_id: str, *, limit: int = 100,
                before_ts: float | None = None) -> list[Sample]:
        """The newest readings first (strictly before ``before_ts`` if given)."""
        key = self.device_key(device_id)
        if key is None:
            return []
        sql = "SELECT ts, boot, seq, cset, vals, anomaly FROM readings WHERE device = ?"
        params: list[Any] = [key]
        if before_ts is not None:
            sql += " AND ts < ?"
            params.append(before_ts)
        sql += " ORDER BY ts DESC, boot DESC, seq DESC LIMIT ?"
        params.append(int(limit))
        with self._guard("reading samples") as conn:
            rows = conn.execute(sql, params).fetchall()
        out = []
        for ts, boot, seq, cset, vals, anomaly in rows:
            names = self._names_of(int(cset))
            decoded = np.frombuffer(vals, dtype=VALUE_DTYPE).tolist()
            out.append(Sample(ts=float(ts), boot=int(boot), seq=int(seq),
                              values={n: (None if v != v else v) for n, v in zip(names, decoded,
                                                                                 strict=True)},
                              anomaly=bool(anomaly)))
        return out

    def read_series(self, device_id: str, *, since_ts: float | None = None,
                    limit: int | None = None) -> Series:
        """Readings as arrays, ``ts`` ascending; ``limit`` keeps the newest ``limit``.

        Channels are the union of every channel set seen, in order of first
        appearance; a channel a record does not carry is NaN there.
        """
        key = self.device_key(device_id)
        if key is None:
            return Series(np.zeros(0), np.zeros((0, 0)), [])
        where = "WHERE device = ?"
        params: list[Any] = [key]
        if since_ts is not None:
            where += " AND ts >= ?"
            params.append(since_ts)
        if limit is not None:
            sql = (f"SELECT ts, cset, vals FROM (SELECT ts, boot, seq, cset, vals FROM readings"
                   f" {where} ORDER BY ts DESC, boot DESC, seq DESC LIMIT ?)"
                   " ORDER BY ts, boot, seq")
            params.append(int(limit))
        else:
            sql = f"SELECT ts, cset, vals FROM readings {where} ORDER BY ts, boot, seq"
        with self._guard("reading a series") as conn:
            rows = conn.execute(sql, params).fetchall()
        n = len(rows)
        if not n:
            return Series(np.zeros(0), np.zeros((0, 0)), [])
        ts = np.fromiter((r[0] for r in rows), dtype=np.float64, count=n)
        csets = np.fromiter((r[1] for r in rows), dtype=np.int64, count=n)
        channels: list[str] = []
        for cset in dict.fromkeys(csets.tolist()):
            for name in self._names_of(int(cset)):
                if name not in channels:
                    channels.append(name)
        values = np.full((n, len(channels)), np.nan, dtype=np.float64)
        for cset in np.unique(csets).tolist():
            names = self._names_of(int(cset))
            idx = np.flatnonzero(csets == cset)
            blob = b"".join(rows[i][2] for i in idx.tolist())
            block = np.frombuffer(blob, dtype=VALUE_DTYPE).reshape(len(idx), len(names))
            cols = [channels.index(name) for name in names]
            values[np.ix_(idx, np.asarray(cols, dtype=np.intp))] = block
        return Series(ts=ts, values=values, channels=channels)

    def count_since(self, device_id: str, ts: float) -> int:
        key = self.device_key(device_id)
        if key is None:
            return 0
        with self._guard("counting readings") as conn:
            (count,) = conn.execute("SELECT COUNT(*) FROM readings WHERE device = ? AND ts >= ?",
                                    (key, ts)).fetchone()
        return int(count)

    def quarantine(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest rejected payloads first: topic, reason, first bytes as hex, time."""
        with self._guard("reading the quarantine") as conn:
            rows = conn.execute(
                "SELECT time, topic, device, reason, detail, size, head FROM quarantine"
                " ORDER BY id DESC LIMIT ?", (int(limit),)
            ).fetchall()
        return [{"time": t, "topic": topic, "device": dev, "reason": reason, "detail": detail,
                 "size": size, "head": bytes(head).hex()}
                for t, topic, dev, reason, detail, size, head in rows]

    def counters(self) -> dict[str, int]:
        with self._guard("reading counters") as conn:
            return {name: int(v) for name, v in conn.execute("SELECT name, value FROM counters")}

    def summary(self) -> dict[str, Any]:
        """Exactly what ``status --json`` prints."""
        devices = self.devices()
        counters = self.counters()
        with self._guard("reading the quarantine size") as conn:
            (held,) = conn.execute("SELECT COUNT(*) FROM quarantine").fetchone()
            version = schema.current_version(conn)
        prefix, blank = "rejected.", "implausible."
        return {
            "devices": {
                d.id: {"stored": d.stored, "boots": d.boots, "last_seen": d.last_seen,
                       "online": d.online, "duplicates": d.duplicates, "rejected": d.rejected,
                       "firmware": d.firmware}
                for d in devices
            },
            "stored": sum(d.stored for d in devices),
            "duplicates": counters.get("duplicates", 0),
            "rejected": counters.get("rejected", 0),
            "rejected_by_reason": {k[len(prefix):]: v for k, v in sorted(counters.items())
                                   if k.startswith(prefix)},
            # values outside their channel's plausible range, stored as missing
            "implausible": counters.get("implausible", 0),
            "implausible_by_channel": {k[len(blank):]: v for k, v in sorted(counters.items())
                                       if k.startswith(blank)},
            "quarantine": int(held),
            "schema_version": version,
            "ingest": read_health(self.path),
        }
