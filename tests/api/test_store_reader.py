"""The API's per-thread store connections end with their threads (no growth under churn)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from gateway.api import StoreReader
from gateway.store import Store


def _db_fds(path: Path) -> int:
    """File descriptors of this process open on the database file or its WAL."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith(str(path)):
            count += 1
    return count


def _read_in_a_thread(reader: StoreReader) -> None:
    thread = threading.Thread(target=lambda: reader.get().devices())
    thread.start()
    thread.join(30)
    assert not thread.is_alive()


def test_retired_worker_threads_do_not_keep_their_connections(tmp_path: Path) -> None:
    path = tmp_path / "gateway.sqlite3"
    with Store.open(path) as writer:  # creates and migrates the database
        reader = StoreReader(path)
        try:
            _read_in_a_thread(reader)
            _read_in_a_thread(reader)
            fds_after_warmup = _db_fds(path)
            for _ in range(40):  # worker threads come and go, as anyio's do
                _read_in_a_thread(reader)
            assert _db_fds(path) <= fds_after_warmup
            assert reader.open_count() <= 2
            reader.get().devices()  # this thread's connection: kept while it lives
            assert reader.get() is reader.get()
        finally:
            reader.close()
        assert reader.open_count() == 0
        writer.devices()
