"""A really full disk: the data directory on a small tmpfs that fills during a stream.

The test mounts the tmpfs itself (it needs root; without the right to mount it
is skipped, saying so). A ballast file leaves little room; readings stream in
until SQLite reports the disk full. Then ingest stops acknowledging (what is not
acked stays queued in Mosquitto), ``/healthz`` says why, and deleting the ballast
resumes ingest in the same process. At the end every reading sent is stored
exactly once and ``PRAGMA integrity_check`` is ok.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from gateway_rig import GatewayProcess, db_path, publisher, wait_for, write_config

from gateway.rigs.broker import PrivateBroker
from shared.codec import Batch, encode_binary

TMPFS_BYTES = 4 * 1024 * 1024
LEFT_FREE = 160 * 1024  # after the ballast: a few thousand readings, then full
BATCH = 20
DEVICES = ("dev-a", "dev-b")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "data"  # the gateway's data_dir (gateway_rig.write_config)
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES},mode=0755",
                           "tmpfs", str(mount_point)], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, timeout=30)


def free_bytes(path: Path) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def fill(path: Path, leave: int) -> Path:
    ballast = path / "ballast"
    with ballast.open("wb") as handle:
        chunk = b"\0" * 65536
        while free_bytes(path) > leave + len(chunk):
            handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
    return ballast


class Stream:
    """Binary batches from two devices, QoS 1 (acked by the broker), until stopped."""

    def __init__(self, broker: PrivateBroker, prefix: str) -> None:
        self.client = publisher(broker, f"pub-{prefix}")
        self.prefix = prefix
        self.sent = dict.fromkeys(DEVICES, 0)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            for device in DEVICES:
                seq = self.sent[device]
                rows = [[20.0 + (seq + i) % 9 * 0.1, 50.0] for i in range(BATCH)]
                payload = encode_binary(Batch(1, seq, 1_700_000_000 + seq, ["temp", "hum"],
                                              rows, period_ms=1000))
                self.client.publish(f"{self.prefix}/{device}/data", payload,
                                    qos=1).wait_for_publish(10)
                self.sent[device] += BATCH
            self.stop.wait(0.02)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)
        self.client.disconnect()
        self.client.loop_stop()


def test_a_full_disk_stops_acks_then_resumes_and_loses_nothing(
        tmp_path: Path, small_disk: Path, broker: PrivateBroker, prefix: str,
        gateway_process: type[GatewayProcess]) -> None:
    config = write_config(tmp_path, broker, prefix)
    assert db_path(config).parent == small_disk
    gateway = gateway_process(config).start()
    assert gateway.url is not None
    health_url = f"{gateway.url}/healthz"
    assert httpx.get(health_url, timeout=10).status_code == 200
    ballast = fill(small_disk, LEFT_FREE)

    stream = Stream(broker, prefix)
    stream.thread.start()
    try:
        def full() -> dict[str, object] | None:
            answer = httpx.get(health_url, timeout=10)
            assert answer.status_code in (200, 503), (answer.status_code, answer.text,
                                                      gateway.lines[-30:])
            return answer.json() if answer.status_code == 503 else None

        degraded = wait_for(full, 120, "the store to fill up and /healthz to say so")
        assert degraded["status"] == "degraded"
        reason = str(degraded["reason"])
        assert reason.startswith("ingest store unavailable: ")
        assert "database or disk is full" in reason, reason
        overview = httpx.get(f"{gateway.url}/api/overview", timeout=10)
        assert overview.status_code == 200, (overview.text, "".join(gateway.lines[-40:]))
        # what the dashboard's header shows
        assert overview.json()["status"] == "degraded"
        assert overview.json()["reason"].startswith("ingest store unavailable: ")
        # no model yet (training is off): the registry's tables were made with the store's
        # at start, so a full disk still gets the plain answer, not a 500
        model = httpx.get(f"{gateway.url}/api/model", timeout=10)
        assert model.status_code == 404, model.text
        assert model.json()["detail"].startswith("no model yet")

        # acks have stopped: what is stored stays put while the stream goes on
        stalled = stored(config)
        sent_when_full = sum(stream.sent.values())
        wait_for(lambda: sum(stream.sent.values()) >= sent_when_full + 400, 60,
                 "more readings sent while the disk is full")
        assert stored(config) == stalled
        assert stalled < sum(stream.sent.values())
    finally:
        stream.close()
    total = sum(stream.sent.values())

    ballast.unlink()  # space again: the same process resumes
    wait_for(lambda: stored(config) == total, 120, f"all {total} readings stored after the "
             "space came back")
    wait_for(lambda: httpx.get(health_url, timeout=10).status_code == 200, 30,
             "/healthz ok again")
    assert gateway.proc is not None and gateway.proc.poll() is None  # never restarted

    with sqlite3.connect(f"file:{db_path(config)}?mode=ro", uri=True) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rows = conn.execute(
            "SELECT d.name, COUNT(*), MIN(r.seq), MAX(r.seq) FROM readings r "
            "JOIN devices d ON d.id = r.device GROUP BY d.name ORDER BY d.name").fetchall()
    assert rows == [(device, stream.sent[device], 0, stream.sent[device] - 1)
                    for device in DEVICES]


def stored(config: Path) -> int:
    """Readings in the store (a read-only connection: a reader needs no free space)."""
    with sqlite3.connect(f"file:{db_path(config)}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM readings").fetchone()[0])
