"""OTA under the MicroPython unix port against a real Mosquitto."""

from __future__ import annotations

import shutil
from pathlib import Path

from gateway.firmware import FIRMWARE_DIR
from gateway.ota import Bundle, KeyStore, build_bundle
from gateway.ota.bundle import FACTORY_VERSION
from gateway.rigs.board import Board
from tests.firmware.conftest import Collector
from tests.ota.conftest import make_board_dir, pusher

# An update from .mpy modules at the firmware's 32 KB heap cap (docs/firmware.md, Over-the-air
# updates, Memory). On this 64-bit port it passes at every heap tried from 32,300 bytes to
# 36 KB (32 to 36 KB in 512-byte steps), with the venv at four paths of different lengths; at
# 31 KB the manifest check runs out of heap.
OTA_HEAP = "32k"


def test_update_succeeds_and_the_board_reports_the_new_version(broker, prefix, tmp_path: Path,
                                                               bundle, boards) -> None:
    keys = KeyStore(tmp_path / "keys")
    d = make_board_dir(tmp_path, broker.port, prefix, "dev1", keys)
    collector = Collector(broker.port, prefix)
    try:
        boards.append(Board(d).start())
        collector.wait_status(lambda s: s.get("state") == "online", timeout=30)
        out = pusher(broker.port, prefix).push({"dev1": (bundle, keys.get("dev1"))}, timeout=90)
        o = out["dev1"]
        assert o.state == "updated", (o.as_dict(), boards[0].log()[-3000:])
        status = collector.wait_status(lambda s: s.get("fw") == bundle.version, timeout=10)
        assert status["ota"]["state"] == "confirmed"
    finally:
        collector.close()


class CorruptBundle(Bundle):
    """The same manifest, one byte of one file flipped in the stream (a corrupted chunk)."""

    def stream(self, transfer_id: str, key: bytes, confirm_s: int = 120) -> bytes:
        good = bytearray(super().stream(transfer_id, key, confirm_s))
        good[len(good) - self.firmware_bytes // 2] ^= 0x40
        return bytes(good)


def _refused_and_still_running(broker, prefix, tmp_path: Path, boards, bundle, key_of,
                               reason: str) -> None:
    keys = KeyStore(tmp_path / "keys")
    d = make_board_dir(tmp_path, broker.port, prefix, "dev1", keys)
    collector = Collector(broker.port, prefix)
    try:
        boards.append(Board(d).start())
        collector.wait_status(lambda s: s.get("state") == "online", timeout=30)
        out = pusher(broker.port, prefix).push({"dev1": (bundle, key_of(keys))}, timeout=90)
        o = out["dev1"]
        assert o.state == "refused" and reason in (o.reason or ""), o.as_dict()
        # the board is back on its current version, with the refusal in its status
        status = collector.wait_status(
            lambda s: s.get("state") == "online" and (s.get("ota") or {}).get("id")
            == o.transfer_id, timeout=30)
        assert status["fw"] == FACTORY_VERSION and status["ota"]["state"] == "refused"
        assert reason in status["ota"]["reason"]
        assert not (d / "ota" / o.transfer_id).exists()
        seen = len(collector.keys)
        collector.wait_for(seen + 20, timeout=30)  # and it keeps publishing readings
        assert len(set(collector.keys)) >= seen + 20
    finally:
        collector.close()


def test_wrong_hmac_is_refused_and_the_board_keeps_running(broker, prefix, tmp_path: Path,
                                                           bundle, boards) -> None:
    _refused_and_still_running(broker, prefix, tmp_path, boards, bundle,
                               lambda keys: bytes(32), "HMAC")


def test_corrupted_chunk_is_refused_and_the_board_keeps_running(broker, prefix, tmp_path: Path,
                                                                bundle, boards) -> None:
    bad = CorruptBundle(bundle.version, bundle.files)
    _refused_and_still_running(broker, prefix, tmp_path, boards, bad,
                               lambda keys: keys.get("dev1"), "hash mismatch")


def test_a_version_raising_at_import_is_rolled_back(broker, prefix, tmp_path: Path,
                                                    boards) -> None:
    src = tmp_path / "broken"
    shutil.copytree(FIRMWARE_DIR, src, ignore=shutil.ignore_patterns("host"))
    agent = src / "agent.py"
    agent.write_text(agent.read_text() + '\nraise RuntimeError("this version is broken")\n')
    broken = build_bundle(tmp_path / "b", source=src)
    keys = KeyStore(tmp_path / "keys")
    d = make_board_dir(tmp_path, broker.port, prefix, "dev1", keys)
    collector = Collector(broker.port, prefix)
    try:
        boards.append(Board(d).start())
        collector.wait_status(lambda s: s.get("state") == "online", timeout=30)
        out = pusher(broker.port, prefix).push({"dev1": (broken, keys.get("dev1"))}, timeout=90)
        o = out["dev1"]
        assert o.state == "rolled_back", (o.as_dict(), boards[0].log()[-3000:])
        status = collector.wait_status(lambda s: s.get("state") == "online"
                                       and s.get("ota", {}).get("state") == "rolled_back")
        assert status["fw"] == FACTORY_VERSION
        assert "this version is broken" in boards[0].log()
        assert not (d / "ota" / "fw.json").exists()  # back on the factory files
        assert not (d / "ota" / o.transfer_id).exists()
    finally:
        collector.close()


def test_ota_at_a_capped_heap_from_mpy_modules(broker, prefix, tmp_path: Path, bundle,
                                            factory_build, boards) -> None:
    keys = KeyStore(tmp_path / "keys")
    # the heap test's config (docs/firmware.md, Memory): 1 KB receive buffer, 2 RAM slots,
    # batches of 20 as fast as the port samples
    d = make_board_dir(tmp_path, broker.port, prefix, "dev1", keys, mqtt={"max_incoming": 1024},
                       buffer={"ram_batches": 2}, period_ms=0, batch_size=20)
    collector = Collector(broker.port, prefix)
    try:
        boards.append(Board(d, heap=OTA_HEAP, build=factory_build).start())
        collector.wait_status(lambda s: s.get("state") == "online", timeout=30)
        out = pusher(broker.port, prefix).push({"dev1": (bundle, keys.get("dev1"))}, timeout=90)
        o = out["dev1"]
        assert o.state == "updated", (o.as_dict(), boards[0].log()[-3000:])
        assert 0 < o.board_heap_peak <= int(OTA_HEAP[:-1]) * 1024
        status = collector.wait_status(lambda s: s.get("fw") == bundle.version, timeout=10)
        assert status["ota"]["state"] == "confirmed"
        assert "MemoryError" not in boards[0].log()
        seen = len(set(collector.keys))
        collector.wait_for(seen + 20, timeout=30)  # the new version keeps publishing
        assert len(set(collector.keys)) >= seen + 20
    finally:
        collector.close()


def test_a_busy_board_refuses_with_the_reason(broker, prefix, tmp_path: Path, bundle,
                                              boards) -> None:
    # a deep-sleep board takes updates over USB: it answers "busy" at its next wake
    keys = KeyStore(tmp_path / "keys")
    d = make_board_dir(tmp_path, broker.port, prefix, "dev1", keys, power_mode="deep_sleep",
                       period_ms=50, batch_size=2)
    collector = Collector(broker.port, prefix)
    try:
        boards.append(Board(d).start())
        collector.wait_status(lambda s: s.get("state") == "online", timeout=30)
        out = pusher(broker.port, prefix).push({"dev1": (bundle, keys.get("dev1"))}, timeout=60)
        o = out["dev1"]
        assert o.state == "refused" and o.reason.startswith("busy: deep_sleep"), o.as_dict()
        status = collector.wait_status(
            lambda s: (s.get("ota") or {}).get("id") == o.transfer_id, timeout=30)
        assert status["ota"]["state"] == "refused" and status["fw"] == FACTORY_VERSION
    finally:
        collector.close()
