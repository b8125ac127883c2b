"""The SQLite store on a temp file (WAL): schema, dedup, reads, retention, quarantine, faults."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from gateway.ingest.validate import Validator
from gateway.store import (
    Changes,
    Reject,
    StatusUpdate,
    Store,
    StoreError,
    StoreFull,
    StoreUnavailable,
    pack_values,
    schema,
)
from shared.codec import Batch, encode_binary, encode_json

T0 = 1_700_000_000.0


@pytest.fixture
def store(tmp_path: Path):
    with Store.open(tmp_path / "gw.sqlite3") as opened:
        yield opened


def rows_for(store: Store, device: str, boot: int, seqs: range, *, t0: float = T0,
             channels: tuple[str, ...] = ("temp", "hum"), value=lambda s: [float(s), 50.0],
             anomaly=lambda s: 0) -> Changes:
    key = store.register_device(device)
    cset = store.channel_set(channels)
    changes = Changes()
    changes.rows[key] = [(key, boot, s, t0 + s, cset, pack_values(value(s)), anomaly(s))
                         for s in seqs]
    changes.boots[(key, boot)] = t0
    changes.seen[key] = t0 + seqs[-1]
    return changes


def test_wal_mode_and_schema_version(tmp_path: Path, store: Store) -> None:
    conn = sqlite3.connect(tmp_path / "gw.sqlite3")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert schema.current_version(conn) == schema.LATEST == 5
    versions = [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY 1")]
    assert versions == [1, 2, 3, 4, 5]


def test_migration_from_version_1_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    assert schema.migrate(conn, target=1) == 1
    conn.execute("INSERT INTO devices (name, registered, source, stored) VALUES"
                 " ('old-dev', 1.0, 'manual', 0)")
    conn.close()
    with Store.open(path) as store:
        assert [d.id for d in store.devices()] == ["old-dev"]
        assert store.summary()["schema_version"] == schema.LATEST == 5
        assert store.quarantine() == []


def test_newer_schema_is_refused_naming_the_version(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    Store.open(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("INSERT INTO schema_version VALUES (99, 0)")
    conn.close()
    with pytest.raises(StoreError, match="99"):
        Store.open(path)
    with pytest.raises(StoreError, match="99"):
        Store.open(path, readonly=True)


def test_readings_are_stored_once_and_duplicates_counted(store: Store) -> None:
    first = store.commit(rows_for(store, "dev1", 1, range(0, 10)))
    again = store.commit(rows_for(store, "dev1", 1, range(5, 15)))
    key = store.device_key("dev1")
    assert first.inserted == {key: 10} and first.duplicates == {key: 0}
    assert again.inserted == {key: 5} and again.duplicates == {key: 5}
    info = store.device("dev1")
    assert info is not None
    assert (info.stored, info.duplicates, info.boots) == (15, 5, 1)
    store.commit(rows_for(store, "dev1", 2, range(0, 3)))  # a new boot restarts seq
    summary = store.summary()
    assert summary["devices"]["dev1"]["stored"] == 18
    assert summary["devices"]["dev1"]["boots"] == 2
    assert summary["duplicates"] == 5


def test_samples_newest_first_with_missing_values(store: Store) -> None:
    store.commit(rows_for(store, "dev1", 1, range(10),
                          value=lambda s: [float(s), None if s % 2 else 40.0 + s],
                          anomaly=lambda s: int(s == 7)))
    got = store.samples("dev1", limit=3)
    assert [(s.ts, s.seq) for s in got] == [(T0 + 9, 9), (T0 + 8, 8), (T0 + 7, 7)]
    assert got[0].values == {"temp": 9.0, "hum": None}
    assert got[1].values == {"temp": 8.0, "hum": 48.0}
    assert [s.anomaly for s in got] == [False, False, True]
    older = store.samples("dev1", limit=100, before_ts=T0 + 2)
    assert [s.seq for s in older] == [1, 0]
    assert store.samples("nobody") == []


def test_read_series_mixes_channel_sets_in_time_order(store: Store) -> None:
    store.commit(rows_for(store, "dev1", 1, range(0, 4)))
    store.commit(rows_for(store, "dev1", 1, range(4, 6), channels=("hum", "co2"),
                          value=lambda s: [60.0, 400.0 + s]))
    series = store.read_series("dev1")
    assert series.channels == ["temp", "hum", "co2"]
    assert series.ts.tolist() == [T0 + s for s in range(6)]
    assert series.values.dtype == np.float64 and series.values.shape == (6, 3)
    expected = np.array([[0, 50, np.nan], [1, 50, np.nan], [2, 50, np.nan], [3, 50, np.nan],
                         [np.nan, 60, 404], [np.nan, 60, 405]])
    np.testing.assert_array_equal(series.values, expected)
    tail = store.read_series("dev1", since_ts=T0 + 2, limit=3)
    assert tail.ts.tolist() == [T0 + 3, T0 + 4, T0 + 5]
    assert store.count_since("dev1", T0 + 4) == 2
    assert len(store.read_series("nobody")) == 0


def test_float32_values_round_trip(store: Store) -> None:
    store.commit(rows_for(store, "dev1", 1, range(3), value=lambda s: [21.37 + s, -0.5]))
    series = store.read_series("dev1")
    np.testing.assert_array_equal(series.values[:, 0],
                                  np.array([21.37, 22.37, 23.37], dtype=np.float32))


def test_retention_by_age_and_by_rows(store: Store) -> None:
    store.commit(rows_for(store, "dev1", 1, range(100)))
    store.commit(rows_for(store, "dev2", 1, range(10)))
    removed = store.apply_retention(now=T0 + 100 + 50, max_age_s=100)
    assert removed == 50 + 10  # dev1 keeps ts >= T0+50; all of dev2 is older
    assert store.device("dev1").stored == 50  # type: ignore[union-attr]
    assert store.read_series("dev1").ts[0] == T0 + 50
    assert store.apply_retention(max_rows_per_device=20) == 30
    assert store.read_series("dev1").ts.tolist() == [T0 + s for s in range(80, 100)]
    assert store.summary()["stored"] == 20


def test_status_updates_the_registry(store: Store) -> None:
    key = store.register_device("dev1")
    changes = Changes()
    changes.statuses[key] = StatusUpdate(time=T0, online=True,
                                         doc_json='{"firmware": "1.2", "state": "online"}',
                                         firmware="1.2")
    store.commit(changes)
    info = store.device("dev1")
    assert info is not None
    assert (info.online, info.firmware, info.last_seen) == (True, "1.2", T0)
    assert info.status == {"firmware": "1.2", "state": "online"}
    changes = Changes()
    changes.statuses[key] = StatusUpdate(time=T0 + 5, online=False,
                                         doc_json='{"state": "offline"}', firmware=None)
    store.commit(changes)
    info = store.device("dev1")
    assert info is not None
    assert (info.online, info.firmware, info.last_seen) == (False, "1.2", T0 + 5)
    changes = Changes()
    changes.statuses[key] = StatusUpdate(time=T0 + 99, online=True,
                                         doc_json='{"state": "online"}', firmware=None,
                                         seen=False)  # a retained status replayed on subscribe
    store.commit(changes)
    info = store.device("dev1")
    assert info is not None
    assert (info.online, info.last_seen) == (True, T0 + 5)


def test_quarantine_is_bounded_and_newest_first(tmp_path: Path) -> None:
    with Store.open(tmp_path / "q.sqlite3", quarantine_rows=5) as store:
        for i in range(12):
            changes = Changes()
            changes.rejects.append(Reject(time=T0 + i, topic="p/d/data", device="d",
                                          reason="decode", detail=f"bad {i}",
                                          payload=bytes([i]) * 100))
            store.commit(changes)
        held = store.quarantine()
        assert [q["detail"] for q in held] == [f"bad {i}" for i in range(11, 6, -1)]
        assert held[0]["head"] == "0b" * 64 and held[0]["size"] == 100
        summary = store.summary()
        assert summary["quarantine"] == 5
        assert summary["rejected"] == 12
        assert summary["rejected_by_reason"] == {"decode": 12}


def test_readonly_reader_while_writer_commits(tmp_path: Path) -> None:
    path = tmp_path / "gw.sqlite3"
    with Store.open(path) as writer:
        writer.commit(rows_for(writer, "dev1", 1, range(10)))
        with Store.open(path, readonly=True) as reader:
            assert reader.summary()["devices"]["dev1"]["stored"] == 10
            writer.commit(rows_for(writer, "dev1", 1, range(10, 20)))
            assert reader.summary()["devices"]["dev1"]["stored"] == 20
            with pytest.raises(StoreError, match="read-only"):
                reader.register_device("dev2")


def test_readonly_open_of_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"nothing\.sqlite3"):
        Store.open(tmp_path / "nothing.sqlite3", readonly=True)


def test_full_database_raises_store_full_and_recovers(tmp_path: Path) -> None:
    with Store.open(tmp_path / "cap.sqlite3", max_size_mb=0.25) as store:
        seq = 0
        with pytest.raises(StoreFull, match="full"):
            for _ in range(100):
                store.commit(rows_for(store, "dev1", 1, range(seq, seq + 1000)))
                seq += 1000
        stored = store.device("dev1").stored  # type: ignore[union-attr]
        assert stored == seq  # the failed group left nothing behind
        store.set_max_size(0)
        store.commit(rows_for(store, "dev1", 1, range(seq, seq + 1000)))
        assert store.device("dev1").stored == seq + 1000  # type: ignore[union-attr]


def test_locked_database_raises_store_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "lock.sqlite3"
    with Store.open(path, busy_timeout_ms=50) as store:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StoreUnavailable, match=r"lock\.sqlite3"):
            store.commit(rows_for(store, "dev1", 1, range(3)))
        other.execute("ROLLBACK")
        other.close()
        store.commit(rows_for(store, "dev1", 1, range(3)))
        assert store.device("dev1").stored == 3  # type: ignore[union-attr]


def _validate(store: Store, payload: bytes, recv: float, topic: str = "p/dev1/data") -> None:
    validator = Validator("p", resolve=lambda d: store.register_device(d),
                          channel_set=store.channel_set)
    changes = Changes()
    validator.add(topic, payload, recv, changes)
    store.commit(changes)


@pytest.mark.parametrize("encode", [encode_binary, encode_json])
def test_timestamps_from_the_batch_clock(store: Store, encode) -> None:
    batch = Batch(1, 100, int(T0), ["temp"], [[1.0], [2.0], [3.0]], period_ms=250)
    _validate(store, encode(batch), recv=T0 + 999)
    assert store.read_series("dev1").ts.tolist() == [T0, T0 + 0.25, T0 + 0.5]


@pytest.mark.parametrize("encode", [encode_binary, encode_json])
def test_timestamps_without_a_clock_end_at_receive_time(store: Store, encode) -> None:
    _validate(store, encode(Batch(1, 0, 0, ["temp"], [[1.0], [2.0], [3.0]], period_ms=2000)),
              recv=T0)
    _validate(store, encode(Batch(1, 3, 0, ["temp"], [[4.0], [5.0]])), recv=T0 + 10)
    series = store.read_series("dev1")
    assert series.ts.tolist() == [T0 - 4, T0 - 2, T0, T0 + 9, T0 + 10]
    assert series.values[:, 0].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert not np.isnan(series.values).any()
