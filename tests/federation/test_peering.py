"""Two real gateways as LEARNAE peers: rounds fused across them, models pushed to boards."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
from support import GatewayProcess, publish_readings, publisher, retained, wait_for, write_config

from gateway.rigs.broker import PrivateBroker, free_port

TRAINING = {"enabled": True, "period_s": 1.0, "window": 4, "hidden_units": 8, "epochs": 3,
            "min_windows": 16}


def test_two_gateways_train_together_and_push_models(
    tmp_path: Path, broker: PrivateBroker, prefix: str, gateway_process: type[GatewayProcess]
) -> None:
    blocks = tmp_path / "blocks"  # one content-addressed block store on this machine
    blocks.mkdir()
    ports = [free_port(), free_port()]
    gateways = []
    for i in range(2):
        directory = tmp_path / f"gw{i}"
        (directory / "data").mkdir(parents=True)
        config = write_config(
            directory, broker, f"{prefix}{i}", gateway={"id": f"gw{i}"},
            mqtt={"client_id": f"gw-{prefix}-{i}"}, training=TRAINING,
            peer={"enabled": True, "session": prefix, "blocks_dir": str(blocks),
                  "udp_port": ports[i],
                  "udp_peers": f"127.0.0.1:{ports[1 - i]}", "round_interval_s": 1.0,
                  "announce_interval_s": 0.5, "fetch_timeout_s": 2.0})
        gateways.append(gateway_process(config))
    for gw in gateways:
        gw.start()
    client = publisher(broker, f"pub-{prefix}")
    # a board whose firmware runs edge models says so with a "model" field in its status
    client.publish(f"{prefix}0/board/status",
                   json.dumps({"state": "online", "fw": "0.1.0", "model": None}),
                   qos=1, retain=True).wait_for_publish(10)
    t0 = int(time.time()) - 1000
    publish_readings(client, f"{prefix}0", "board", 200, t0=t0)
    publish_readings(client, f"{prefix}1", "other", 200, t0=t0 + 5)
    client.disconnect()

    first, second = (httpx.Client(base_url=gw.url or "", timeout=10) for gw in gateways)
    ids = [first.get("/api/peers").json()["self_id"], second.get("/api/peers").json()["self_id"]]
    assert ids[0] != ids[1]

    def verified() -> bool:
        items = first.get("/api/peers").json()["items"]
        return any(p["peer_id"] == ids[1] and p.get("last_round") is not None for p in items)

    wait_for(verified, timeout=60, what="gw0 verifying gw1's log")
    rounds = first.get("/api/rounds").json()
    assert {r["peer_id"] for r in rounds} == set(ids)
    assert all("val_loss" in r["metrics"] for r in rounds)
    own = [r for r in rounds if r["peer_id"] == ids[0]]
    assert [r["round"] for r in own] == list(range(len(own)))
    model = first.get("/api/model", params={"device": "board"}).json()
    assert model["channels"] == ["temp", "hum"]
    pushed = wait_for(lambda: retained(broker, f"{prefix}0/board/model", 1.0),
                      what="edge model pushed to the board")
    assert pushed[:4] == b"LEM1"
    assert retained(broker, f"{prefix}1/other/model", 0.5) is None  # did not opt in
    metrics = first.get("/metrics").text
    assert 'learnae_model_pushes_total{result="published"}' in metrics
    assert "learnae_peers 2.0" in metrics
    first.close()
    second.close()
