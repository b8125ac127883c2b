"""OTA under the MicroPython unix port against a real Mosquitto."""

from __future__ import annotations

from pathlib import Path

from gateway.ota import KeyStore
from tests.firmware.conftest import Collector
from tests.ota.conftest import make_board_dir, pusher
from tests.ota.rig import Board


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
