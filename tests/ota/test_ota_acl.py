"""An update through a broker with the gateway's ACL template and per-device users:
the OTA topics are allowed (a denied publish would look successful, and stall)."""

from __future__ import annotations

from pathlib import Path

from gateway.ota import KeyStore
from gateway.rigs.board import Board
from gateway.rigs.broker import PrivateBroker
from gateway.system import render_acl, write_password_file
from tests.firmware.conftest import Collector
from tests.ota.conftest import make_board_dir, pusher


def test_update_through_the_acl_template(prefix, tmp_path: Path, bundle, boards) -> None:
    d = tmp_path / "broker"
    d.mkdir()
    write_password_file(d / "passwd", {"gw": "gw-pw", "dev1": "d1-pw"})
    (d / "acl").write_text(render_acl(prefix, "gw"))
    with PrivateBroker(d, password_file=d / "passwd", acl_file=d / "acl") as broker:
        keys = KeyStore(tmp_path / "keys")
        board_dir = make_board_dir(tmp_path, broker.port, prefix, "dev1", keys,
                                   mqtt={"username": "dev1", "password": "d1-pw"})
        collector = Collector(broker.port, prefix, username="gw", password="gw-pw")
        try:
            boards.append(Board(board_dir).start())
            collector.wait_status(lambda s: s.get("state") == "online", timeout=30)
            push = pusher(broker.port, prefix, username="gw", password="gw-pw")
            o = push.push({"dev1": (bundle, keys.get("dev1"))}, timeout=90)["dev1"]
            assert o.state == "updated", o.as_dict()
            collector.wait_status(lambda s: s.get("fw") == bundle.version)
        finally:
            collector.close()
