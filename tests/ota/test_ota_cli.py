"""`learnae-gateway device add` provisions the OTA key; `ota push` updates and rotates it."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.cli import main
from gateway.ota import KeyStore
from gateway.rigs.board import Board
from tests.firmware.conftest import Collector, write_config


def test_device_add_then_ota_push_and_key_rotation(broker, prefix, tmp_path: Path, boards,
                                                   capsys) -> None:
    toml = tmp_path / "gw.toml"
    toml.write_text(f'[gateway]\nid = "gw"\ndata_dir = "{tmp_path / "data"}"\n'
                    f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n'
                    f'topic_prefix = "{prefix}"\n[ota]\nconfirm_s = 30\nack_timeout_s = 3\n')
    assert main(["device", "add", "dev1", "--config", str(toml),
                 "--out", str(tmp_path / "dev1.json")]) == 0
    key_file = tmp_path / "dev1.ota.key"
    assert len(bytes.fromhex(key_file.read_text())) == 32
    board_dir = tmp_path / "board"
    write_config(board_dir, broker.port, prefix, period_ms=20, batch_size=5)
    (board_dir / "ota.key").write_text(key_file.read_text())  # as `flash` installs it
    collector = Collector(broker.port, prefix)
    try:
        boards.append(Board(board_dir).start())
        collector.wait_status(lambda s: s.get("state") == "online", timeout=30)
        capsys.readouterr()
        assert main(["ota", "push", "--config", str(toml), "--device", "dev1"]) == 0
        summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert summary["updated"] == 1 and summary["devices"]["dev1"]["state"] == "updated"
        version = summary["devices"]["dev1"]["version"]
        collector.wait_status(lambda s: s.get("fw") == version)
        # rotate: the board's key and the gateway's change together
        old = KeyStore(tmp_path / "data" / "ota" / "keys").get("dev1")
        assert main(["ota", "push", "--config", str(toml), "--all", "--rotate-key"]) == 0
        new = KeyStore(tmp_path / "data" / "ota" / "keys").get("dev1")
        assert new != old and bytes.fromhex((board_dir / "ota.key").read_text()) == new
        # and an update signed with the new key goes through
        assert main(["ota", "push", "--config", str(toml), "--device", "dev1"]) == 0
    finally:
        collector.close()
