"""Readings published by a real MQTT client reach a real gateway process and the store."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.rigs.broker import PrivateBroker
from shared.codec import Batch, encode_binary, encode_json

from .helpers import publisher, status, wait_for, write_config


def test_json_and_binary_readings_are_all_stored(
    tmp_path: Path, broker: PrivateBroker, prefix: str, gateway_process: type
) -> None:
    config = write_config(tmp_path, broker, prefix)
    gateway_process(config).start()
    client = publisher(broker, f"{prefix}-dev")
    infos = [client.publish(f"{prefix}/dev-a/status",
                            json.dumps({"state": "online", "firmware": "0.3.1"}),
                            qos=1, retain=True)]
    n = 0
    for k in range(60):  # 60 batches x 7 records, alternating JSON and binary
        batch = Batch(boot=3, seq=k * 7, t=1_700_000_000 + k * 7, period_ms=1000,
                      channels=["temp", "hum"],
                      values=[[20.0 + 0.1 * i, None if i == 3 else 45.0] for i in range(7)])
        payload = encode_json(batch) if k % 2 else encode_binary(batch)
        infos.append(client.publish(f"{prefix}/dev-a/data", payload, qos=1))
        n += 7
    for info in infos:
        info.wait_for_publish(10)

    def done() -> dict | None:
        doc = status(config)
        dev = doc["devices"].get("dev-a")
        return doc if dev and dev["stored"] >= n and dev["online"] else None

    doc = wait_for(done, 30, f"{n} readings stored")
    dev = doc["devices"]["dev-a"]
    assert dev["stored"] == n == 420
    assert dev["boots"] == 1
    assert dev["online"] is True
    assert dev["firmware"] == "0.3.1"
    assert dev["duplicates"] == 0
    assert doc["rejected"] == 0
    assert isinstance(dev["last_seen"], float)

    # the offline will/status flips the registry
    client.publish(f"{prefix}/dev-a/status", json.dumps({"state": "offline"}), qos=1,
                   retain=True).wait_for_publish(10)
    wait_for(lambda: status(config)["devices"]["dev-a"]["online"] is False, 30, "offline")
    client.loop_stop()
    client.disconnect()
