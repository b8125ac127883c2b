"""``device add`` registers the device in the gateway's store, so a gateway that rejects
unknown devices takes its readings (and still turns away devices nobody added)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ingest.helpers import REPO, db_path, publisher, status, wait_for, write_config

from gateway.rigs.broker import PrivateBroker
from gateway.store import Store
from shared.codec import Batch, encode_binary


def device_add(config: Path, device: str, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", "device", "add", device,
                           "--config", str(config), "--out", str(out)],
                          capture_output=True, text=True, cwd=REPO, timeout=60)


def test_added_device_is_accepted_when_unknown_devices_are_rejected(
        tmp_path: Path, broker: PrivateBroker, prefix: str, gateway_process: type) -> None:
    config = write_config(tmp_path, broker, prefix, ingest={"unknown_devices": "reject"})
    assert not db_path(config).exists()
    added = device_add(config, "board-1", tmp_path / "board-1.json")
    assert added.returncode == 0, added.stderr
    assert json.loads((tmp_path / "board-1.json").read_text())["device_id"] == "board-1"
    with Store.open(db_path(config), readonly=True) as store:  # created by `device add`
        assert [d.id for d in store.devices()] == ["board-1"]
    gateway = gateway_process(config).start()
    # a device added while the gateway runs is accepted too
    late = device_add(config, "board-2", tmp_path / "board-2.json")
    assert late.returncode == 0, late.stderr
    client = publisher(broker, f"{prefix}-pub")
    infos = []
    for device in ("board-1", "board-2", "stranger"):
        for k in range(4):
            batch = Batch(1, k * 5, 0, ["temp"], [[20.0 + k]] * 5)
            infos.append(client.publish(f"{prefix}/{device}/data", encode_binary(batch), qos=1))
    for info in infos:
        info.wait_for_publish(10)
    client.loop_stop()
    client.disconnect()
    doc = wait_for(lambda: (d := status(config))["rejected"] == 4 and d["stored"] == 40 and d,
                   30, "all handled")
    assert gateway.proc.poll() is None
    assert {name: d["stored"] for name, d in doc["devices"].items()} == {"board-1": 20,
                                                                         "board-2": 20}
    assert doc["rejected_by_reason"] == {"unknown_device": 4}
    with Store.open(db_path(config), readonly=True) as store:
        held = store.quarantine()
    assert {(q["reason"], q["device"]) for q in held} == {("unknown_device", "stranger")}
    assert held[0]["detail"] == "device 'stranger' is not registered"


def test_device_add_names_an_invalid_id(tmp_path: Path, broker: PrivateBroker,
                                        prefix: str) -> None:
    config = write_config(tmp_path, broker, prefix)
    bad = device_add(config, "Bad Id", tmp_path / "x.json")
    assert bad.returncode == 2
    assert "'Bad Id'" in bad.stderr
    assert not db_path(config).exists()
