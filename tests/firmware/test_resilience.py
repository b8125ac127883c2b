"""Broker restarts, malformed messages, a silent broker, the heap cap."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from gateway.broker import PrivateBroker

from gateway import micropython_host
from gateway.commands.sim import EXIT_REVALIDATED, HOST_SHIMS
from shared.edge_model import pack_model
from tests.firmware.conftest import SilentServer, run_sim, write_config

# The required heap caps for 10,000 readings on this 64-bit unix port: 32 KB with
# mpy-cross-compiled modules, 64 KB from .py sources (see docs/firmware.md, Memory).
HEAP_MPY = "32k"
HEAP_PY = "64k"


@pytest.mark.parametrize(("heap", "compiled"), [(HEAP_MPY, True), (HEAP_PY, False)])
def test_ten_thousand_readings_under_a_heap_cap(broker, prefix, tmp_path: Path, mpy_build,
                                                collector_factory, heap, compiled) -> None:
    collector = collector_factory(broker.port, prefix)
    # two RAM batch slots: what does not fit waits in the flash spool, nothing is lost
    write_config(tmp_path, broker.port, prefix, mqtt={"max_incoming": 1024},
                 buffer={"ram_batches": 2})
    code, out = run_sim(tmp_path, 10000, heap=heap, build_dir=mpy_build if compiled else None)
    assert code == 0, out
    assert "MemoryError" not in out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["made"] == summary["acked"] == 10000
    assert summary["drops"] == 0 and summary["heap_total"] <= int(heap[:-1]) * 1024 + 1024
    collector.wait_for(10000)
    assert sorted(collector.keys) == [("dev1", 1, s) for s in range(10000)]


def spawn_firmware(state_dir: Path, count: int):
    log = (state_dir / "stdout.txt").open("w")

    def start():
        return micropython_host.spawn(micropython_host.FIRMWARE_DIR / "main.py", "--count",
                                      str(count), heap="256k", extra_path=[HOST_SHIMS],
                                      cwd=state_dir, stdout=log, stderr=log)

    first = start()  # a fresh config is validated first, then the firmware starts again
    try:
        assert first.wait(30) == EXIT_REVALIDATED
    finally:
        if first.poll() is None:
            first.kill()
    return start()


def test_broker_restart_mid_stream_loses_nothing(tmp_path: Path, collector_factory) -> None:
    with PrivateBroker(tmp_path / "broker") as own:
        collector = collector_factory(own.port, "rs")
        write_config(tmp_path / "dev", own.port, "rs", period_ms=2, batch_size=10)
        proc = spawn_firmware(tmp_path / "dev", 1500)
        try:
            collector.wait_for(300)
            own.restart()  # SIGTERM: the broker saves its sessions, then starts again
            assert proc.wait(60) == 0, (tmp_path / "dev" / "stdout.txt").read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
        collector.wait_for(1500)
        assert set(collector.keys) == {("dev1", 1, s) for s in range(1500)}
        assert "down:" in (tmp_path / "dev" / "stdout.txt").read_text()


def test_bad_config_model_and_command_are_reported_not_fatal(broker, prefix, tmp_path: Path,
                                                             collector_factory) -> None:
    collector = collector_factory(broker.port, prefix)
    write_config(tmp_path, broker.port, prefix, period_ms=5, batch_size=10)
    proc = spawn_firmware(tmp_path, 1200)
    try:
        collector.wait_status(lambda d: d["state"] == "online")
        base = f"{prefix}/dev1/"
        collector.publish(base + "config", b'{"batch_size": 0}')
        doc = collector.wait_status(lambda d: d["config_rejected"] is not None)
        assert "batch_size 0 is outside 1..255" in doc["config_rejected"]
        collector.publish(base + "config", b"{not json")
        collector.wait_status(lambda d: "batch_size" not in (d["config_rejected"] or "x"))
        collector.publish(base + "model", b"LEM1garbage")
        doc = collector.wait_status(lambda d: d["model_error"] is not None)
        assert "model" in doc["model_error"] and doc["model"] is None
        collector.publish(base + "cmd", b'{"cmd": "selfdestruct"}', retain=False)
        doc = collector.wait_status(lambda d: "command rejected" in (d["last_error"] or ""))
        assert "'selfdestruct'" in doc["last_error"]
        # a valid config still applies afterwards, without a reboot
        collector.publish(base + "config", b'{"batch_size": 5, "period_ms": 2}')
        doc = collector.wait_status(lambda d: d["batch_size"] == 5 and d["period_ms"] == 2)
        assert doc["config_rejected"] is None and doc["boot"] == 1
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    collector.wait_for(1200)
    assert set(collector.keys) == {("dev1", 1, s) for s in range(1200)}
    assert any(len(b.values) == 5 for b in collector.batches)
    collector.publish(f"{prefix}/dev1/config", b"")  # clear the retained messages
    collector.publish(f"{prefix}/dev1/model", b"")


def test_model_flags_injected_anomalies(broker, prefix, tmp_path: Path,
                                        collector_factory) -> None:
    collector = collector_factory(broker.port, prefix)
    marks = [50, 120, 333]
    # predict the mean (zero weights): score = |x - mean| / std; anomalies add 24 to temp
    model = pack_model(1, [21.0, 45.0], [1.0, 1.0], [1.0, 1.0], 15.0,
                       [([[0.0, 0.0], [0.0, 0.0]], [0.0, 0.0], "linear")])
    collector.publish(f"{prefix}/dev1/model", model)
    write_config(tmp_path, broker.port, prefix, sensors=[
        {"type": "simulated", "seed": 3, "anomaly_at": marks, "noise": 0.5}])
    code, out = run_sim(tmp_path, 400)
    assert code == 0, out
    collector.wait_for(400)
    flagged = sorted(b.seq + i for b in collector.batches for i in b.anomalies)
    assert flagged == marks
    collector.publish(f"{prefix}/dev1/model", b"")


def test_silent_broker_then_recovery(tmp_path: Path, collector_factory) -> None:
    """A server that accepts and never answers: the agent times out, retries, recovers."""
    server = SilentServer()
    port = server.port
    write_config(tmp_path / "dev", port, "sil", period_ms=5, batch_size=10)
    proc = spawn_firmware(tmp_path / "dev", 300)
    try:
        time.sleep(3.0)
        assert proc.poll() is None
        assert len(server.accepted) >= 2  # it timed out and tried again
        server.stop()
        with PrivateBroker(tmp_path / "broker", port=port) as own:
            collector = collector_factory(own.port, "sil")
            assert proc.wait(30) == 0
            collector.wait_for(300)
            assert set(collector.keys) == {("dev1", 1, s) for s in range(300)}
            log = (tmp_path / "dev" / "stdout.txt").read_text()
            assert "down: OSError" in log
            collector.close()
    finally:
        server.stop()  # the accept thread ends even when an assertion above failed
        if proc.poll() is None:
            proc.kill()


def test_failing_sensor_is_reported_and_sent_as_missing(broker, prefix, tmp_path: Path,
                                                        collector_factory) -> None:
    collector = collector_factory(broker.port, prefix)
    write_config(tmp_path, broker.port, prefix, sensors=[
        {"type": "simulated", "fail_at": 30},
        {"type": "dht22", "channels": ["t2", "h2"]}])  # no dht module on a host
    code, out = run_sim(tmp_path, 40)
    assert code == 0, out
    collector.wait_for(40)
    rows = [v for b in sorted(collector.batches, key=lambda b: b.seq) for v in b.values]
    assert all(r[0] is not None for r in rows[:30])
    assert all(r == [None, None, None, None] for r in rows[30:])
    doc = collector.wait_status(lambda d: d["state"] == "offline")
    assert doc["sensor_errors"]["0:simulated"] == "simulated sensor failure at seq 39"
    assert doc["sensor_errors"]["1:dht22"].startswith("dht22: ")


def test_full_buffer_drops_oldest_and_counts_them(tmp_path: Path, collector_factory) -> None:
    """No broker while 600 readings are made into a buffer of 2 RAM slots + 1 KB of flash."""
    from gateway.broker import free_port

    port = free_port()
    write_config(tmp_path / "dev", port, "dr", period_ms=2, batch_size=10,
                 buffer={"ram_batches": 2, "spool_segments": 2, "segment_bytes": 512})
    # the collector's persistent session exists before the device can connect, so
    # nothing the device delivers the moment the broker is back goes unseen
    own = PrivateBroker(tmp_path / "broker", port=port).start()
    collector = collector_factory(own.port, "dr")
    own.stop()
    proc = spawn_firmware(tmp_path / "dev", 600)
    try:
        time.sleep(2.5)  # 600 readings x 2 ms: all made while offline
        with own.start():
            assert proc.wait(30) == 0
            summary = json.loads((tmp_path / "dev" / "stdout.txt").read_text()
                                 .strip().splitlines()[-1])
            collector.wait_for(600 - summary["drops"])
            kept = set(collector.keys)
            assert summary["drops"] > 0
            assert len(kept) + summary["drops"] == 600
            # the newest readings survive, the oldest were dropped
            assert ("dev1", 1, 599) in kept and ("dev1", 1, 0) not in kept
            collector.close()
    finally:
        if proc.poll() is None:
            proc.kill()
