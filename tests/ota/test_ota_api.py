"""POST /api/devices/{id}/ota (token) updates a board; GET and /metrics show the outcome."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from gateway.api import ServiceContext, StoreReader, create_app
from gateway.config import GatewayConfig, GatewaySection, MqttSection, OtaSection
from gateway.ota import KeyStore, keys_dir
from gateway.rigs.board import Board
from tests.firmware.conftest import Collector, write_config


def test_api_push_updates_the_board(broker, prefix, tmp_path: Path, boards) -> None:
    config = GatewayConfig(gateway=GatewaySection(id="gw", data_dir=tmp_path / "data"),
                           mqtt=MqttSection(port=broker.port, topic_prefix=prefix),
                           ota=OtaSection(confirm_s=30, ack_timeout_s=3, timeout_s=90))
    config.gateway.data_dir.mkdir(parents=True)
    key = KeyStore(keys_dir(config)).create("dev1")
    d = tmp_path / "dev1"
    write_config(d, broker.port, prefix, period_ms=20, batch_size=5)
    (d / "ota.key").write_text(key.hex())
    collector = Collector(broker.port, prefix)
    context = ServiceContext(config=config, token="tok", store=StoreReader(config.db_path),
                             registry=CollectorRegistry())
    try:
        boards.append(Board(d).start())
        collector.wait_status(lambda s: s.get("state") == "online", timeout=30)
        with TestClient(create_app(context)) as client:
            assert client.post("/api/devices/dev1/ota").status_code == 401
            wrong = {"Authorization": "Bearer nope"}
            assert client.post("/api/devices/dev1/ota", headers=wrong).status_code == 403
            auth = {"Authorization": "Bearer tok"}
            assert client.post("/api/devices/nokey/ota", headers=auth).status_code == 404
            started = client.post("/api/devices/dev1/ota", headers=auth)
            assert started.status_code == 202, started.text
            version = started.json()["version"]
            deadline = time.monotonic() + 90
            doc: dict = {}
            while time.monotonic() < deadline:
                doc = client.get("/api/devices/dev1/ota").json()
                if doc["state"] in ("updated", "refused", "rolled_back", "timeout", "failed"):
                    break
                time.sleep(0.1)
            assert doc["state"] == "updated" and doc["version"] == version, doc
            counted = 'learnae_ota_pushes_total{outcome="updated"} 1.0'
            deadline = time.monotonic() + 10  # counted when the push thread returns
            while counted not in (text := client.get("/metrics").text) and (
                    time.monotonic() < deadline):
                time.sleep(0.1)
            assert counted in text
            assert f'learnae_ota_bytes_acked{{device="dev1"}} {float(doc["total"])}' in text
        collector.wait_status(lambda s: s.get("fw") == version)
    finally:
        collector.close()
