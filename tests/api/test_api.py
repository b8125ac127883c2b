"""The HTTP API over a real store file: every endpoint, token, validation, limits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from support import TOKEN, auth, publisher, register_model, retained, wait_for

from gateway.rigs.broker import PrivateBroker

START = 1_700_000_000.0


def test_healthz_reports_parts_and_store(api_client: TestClient) -> None:
    body = api_client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["gateway"] == "gw-api"
    assert body["parts"] == ["ingest", "api"]


def test_healthz_is_503_with_a_reason_while_ingest_cannot_take_readings(
        api_config: Any, api_store: Any, tmp_path: Path, prefix: str) -> None:
    """A real Ingestor on its own broker: 200 while it stores; 503 with a reason while the
    store cannot be written (another writer holds the lock) and while the broker is gone."""
    import dataclasses
    import sqlite3

    from prometheus_client import CollectorRegistry

    from gateway.api import ServiceContext, StoreReader, create_app
    from gateway.ingest import Ingestor
    from shared.codec import Batch, encode_binary

    own = PrivateBroker(tmp_path / "own-broker").start()
    config = dataclasses.replace(
        api_config, mqtt=dataclasses.replace(api_config.mqtt, port=own.port),
        store=dataclasses.replace(api_config.store, busy_timeout_ms=50))
    ingestor = Ingestor(config, config.db_path, registry=CollectorRegistry())
    ingestor.start()
    context = ServiceContext(config=config, token=TOKEN, store=StoreReader(config.db_path),
                             registry=CollectorRegistry(), ingest_stats=ingestor.stats)
    locker = sqlite3.connect(config.db_path, isolation_level=None)
    try:
        with TestClient(create_app(context)) as client:
            healthy = client.get("/healthz")
            assert healthy.status_code == 200
            assert (healthy.json()["status"], healthy.json()["reason"]) == ("ok", None)

            locker.execute("BEGIN EXCLUSIVE")  # another writer: the store cannot be written
            sender = publisher(own, f"{prefix}-health")
            sender.publish(f"{prefix}/dev-a/data", encode_binary(
                Batch(9, 0, 0, ["temp"], [[20.0]])), qos=1).wait_for_publish(5)
            wait_for(lambda: ingestor.stats()["store"] == "unavailable", 20, "store fault")
            locked = client.get("/healthz")
            assert locked.status_code == 503
            assert locked.json()["status"] == "degraded"
            assert locked.json()["reason"].startswith("ingest store unavailable: ")
            assert "locked" in locked.json()["reason"]

            locker.execute("ROLLBACK")
            wait_for(lambda: ingestor.stats()["store"] == "ok", 20, "store back")
            assert client.get("/healthz").status_code == 200
            sender.loop_stop()
            sender.disconnect()

            own.stop()
            wait_for(lambda: not ingestor.stats()["subscribed"], 20, "disconnect seen")
            gone = client.get("/healthz")
            assert gone.status_code == 503
            assert gone.json()["reason"].startswith(
                "ingest not connected to the MQTT broker (state 'started')")
            # the next attempt's error is appended, naming the broker
            wait_for(lambda: "Connection refused" in client.get("/healthz").json()["reason"],
                     20, "the refused reconnect in the reason")
            assert f"cannot connect to MQTT broker 127.0.0.1:{own.port}: Connection refused" \
                in client.get("/healthz").json()["reason"]
            overview = client.get("/api/overview")  # the dashboard still loads
            assert (overview.status_code, overview.json()["status"]) == (200, "degraded")
    finally:
        locker.close()
        ingestor.stop()
        context.store.close()
        own.close()


def test_devices_are_listed_sorted_with_counts(api_client: TestClient) -> None:
    body = api_client.get("/api/devices").json()
    assert body["total"] == 2
    assert [d["id"] for d in body["items"]] == ["dev-a", "dev-b"]
    assert [d["stored"] for d in body["items"]] == [150, 5]
    assert body["items"][0]["online"] is True
    assert body["items"][0]["firmware"] == "1.0"
    assert body["items"][0]["last_seen"] == START + 149 * 60


def test_devices_pagination_and_limits(api_client: TestClient) -> None:
    page = api_client.get("/api/devices", params={"limit": 1, "offset": 1}).json()
    assert [d["id"] for d in page["items"]] == ["dev-b"]
    assert (page["total"], page["limit"], page["offset"]) == (2, 1, 1)
    assert api_client.get("/api/devices", params={"offset": 5}).json()["items"] == []
    for params in ({"limit": 0}, {"offset": -1}, {"limit": "ten"}):
        response = api_client.get("/api/devices", params=params)
        assert response.status_code == 422, params
    too_many = api_client.get("/api/devices", params={"limit": 501})
    assert too_many.status_code == 422
    assert too_many.json()["detail"][0]["msg"] == "limit 501 exceeds api.max_page = 500"


def test_one_device_and_unknown_or_invalid_ids(api_client: TestClient) -> None:
    assert api_client.get("/api/devices/dev-b").json()["stored"] == 5
    missing = api_client.get("/api/devices/dev-z")
    assert missing.status_code == 404
    assert missing.json()["detail"] == "no device 'dev-z'"
    bad = api_client.get("/api/devices/Dev!")
    assert bad.status_code == 422
    assert "'Dev!'" in bad.json()["detail"][0]["msg"]


def test_samples_newest_first_with_paging(api_client: TestClient, api_store: Any) -> None:
    written = api_store["dev-a"]
    first = api_client.get("/api/devices/dev-a/samples", params={"limit": 100}).json()
    assert len(first["items"]) == 100
    assert first["items"][0]["ts"] == written[-1][0]
    assert first["items"][0]["values"] == {"temp": pytest.approx(written[-1][1][0]),
                                          "hum": pytest.approx(written[-1][1][1])}
    assert first["next_before_ts"] == written[50][0]
    second = api_client.get("/api/devices/dev-a/samples",
                            params={"limit": 100, "before_ts": first["next_before_ts"]}).json()
    assert len(second["items"]) == 50
    assert second["next_before_ts"] is None
    seqs = [s["seq"] for s in first["items"] + second["items"]]
    assert seqs == list(range(149, -1, -1))
    assert [s["seq"] for s in second["items"] if s["anomaly"]] == [3]


def test_samples_rejections(api_client: TestClient) -> None:
    assert api_client.get("/api/devices/nobody/samples").status_code == 404
    assert api_client.get("/api/devices/dev-a/samples", params={"limit": 501}).status_code == 422
    nan = api_client.get("/api/devices/dev-a/samples", params={"before_ts": "nan"})
    assert nan.status_code == 422
    assert nan.json()["detail"][0]["msg"] == "before_ts nan is not finite"


def test_put_config_needs_the_token(api_client: TestClient) -> None:
    body = {"period_ms": 5000}
    missing = api_client.put("/api/devices/dev-a/config", json=body)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = api_client.put("/api/devices/dev-a/config", json=body, headers=auth("nope"))
    assert wrong.status_code == 403
    assert wrong.json()["detail"] == "the bearer token is not valid"


def test_put_config_publishes_it_retained(api_client: TestClient, broker: PrivateBroker,
                                          prefix: str) -> None:
    body = {"period_ms": 5000, "thresholds": {"temp": [-10, 45]}}
    response = api_client.put("/api/devices/dev-a/config", json=body, headers=auth())
    assert response.status_code == 202
    assert response.json()["topic"] == f"{prefix}/dev-a/config"
    payload = retained(broker, f"{prefix}/dev-a/config")
    assert payload is not None
    assert json.loads(payload) == body


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"wifi": {"ssid": "x"}}, "wifi"),
        ({"period_ms": "fast"}, "period_ms 'fast' is not an integer"),
        ({"thresholds": {"temp": [2, 1]}}, "thresholds['temp'] low 2.0 exceeds high 1.0"),
        ({"v": True}, "v True is not supported"),
        ({"power_mode": "turbo"}, "power_mode 'turbo'"),
    ],
)
def test_put_config_rejects_bad_configs_naming_the_field(
    api_client: TestClient, body: dict[str, Any], reason: str
) -> None:
    response = api_client.put("/api/devices/dev-a/config", json=body, headers=auth())
    assert response.status_code == 422
    assert reason in response.json()["detail"][0]["msg"]


def test_put_config_thresholds_of_unreported_channels_conflict(api_client: TestClient) -> None:
    url = "/api/devices/dev-a/config"
    response = api_client.put(url, json={"thresholds": {"co2": [0, 1]}}, headers=auth())
    assert response.status_code == 409
    assert response.json()["detail"] == (
        "thresholds channel 'co2' is not one of the channels device 'dev-a' reports (temp, hum)")
    # a malformed config is refused as such, whatever channel it names
    both = api_client.put(url, json={"thresholds": {"co2": [0, 1]}, "period_ms": -1},
                          headers=auth())
    assert both.status_code == 422
    assert "period_ms -1 is outside 0..86400000" in both.json()["detail"][0]["msg"]


def test_put_config_takes_integral_numbers_as_integers(api_client: TestClient,
                                                        broker: PrivateBroker,
                                                        prefix: str) -> None:
    response = api_client.put("/api/devices/dev-b/config", json={"period_ms": 5000.0},
                              headers=auth())
    assert response.status_code == 202
    assert retained(broker, f"{prefix}/dev-b/config") == b'{"period_ms":5000}'


def test_put_config_malformed_bodies(api_client: TestClient) -> None:
    url = "/api/devices/dev-a/config"
    headers = {**auth(), "Content-Type": "application/json"}
    broken = api_client.put(url, content=b'{"period_ms": ', headers=headers)
    assert broken.status_code == 422
    assert broken.json()["detail"][0]["type"] == "json_invalid"
    array = api_client.put(url, json=[1, 2], headers=auth())
    assert array.status_code == 422
    assert array.json()["detail"][0]["loc"] == ["body"]
    huge = api_client.put(url, content=b"{" + b" " * 5000 + b"}", headers=headers)
    assert huge.status_code == 413
    assert huge.json()["detail"] == "request body larger than 4096 bytes"
    slash = api_client.put("/api/devices/a%2Fb/config", json={}, headers=auth())
    assert slash.status_code == 404  # decoded to a path no route matches
    bad_id = api_client.put("/api/devices/Dev-A/config", json={}, headers=auth())
    assert bad_id.status_code == 422
    assert bad_id.json()["detail"][0]["msg"] == (
        "device id 'Dev-A' has character 'D' outside a-z 0-9 - _")


def test_model_endpoints_before_and_after_training(api_client: TestClient,
                                                   api_config: Any) -> None:
    assert api_client.get("/api/model").status_code == 404
    assert api_client.get("/api/model.tflite").status_code == 404
    assert api_client.get("/api/models").json() == []
    version = register_model(api_config.db_path, "dev-a")
    model = api_client.get("/api/model").json()
    assert (model["version"], model["device"]) == (version, "dev-a")
    assert model["artifacts"] == {"tflite": "/api/model.tflite?device=dev-a",
                                  "edge": "/api/model.lem?device=dev-a"}
    assert model["metrics"]["test_mse"] >= 0.0
    tflite = api_client.get(model["artifacts"]["tflite"])
    assert tflite.status_code == 200
    assert tflite.content[4:8] == b"TFL3"
    edge = api_client.get(model["artifacts"]["edge"])
    assert edge.content[:4] == b"LEM1"
    assert "dev-a-model.lem" in edge.headers["content-disposition"]
    assert [m["device"] for m in api_client.get("/api/models").json()] == ["dev-a"]
    assert api_client.get("/api/model", params={"device": "dev-b"}).status_code == 404
    assert api_client.get("/api/model", params={"device": "B!"}).status_code == 422
    rounds = api_client.get("/api/rounds").json()
    assert [(r["peer_id"], r["round"]) for r in rounds] == [("dev-a", 1)]


def test_peers_and_rounds_without_peering(api_client: TestClient) -> None:
    assert api_client.get("/api/peers").json() == {"enabled": False, "self_id": None, "items": []}
    assert api_client.get("/api/rounds").json() == []
    assert api_client.get("/api/rounds", params={"limit": 0}).status_code == 422


def test_metrics_are_prometheus_text(api_client: TestClient) -> None:
    api_client.get("/api/devices")
    text = api_client.get("/metrics").text
    assert 'learnae_devices{state="online"} 2.0' in text
    assert 'learnae_device_readings_stored{device="dev-a"} 150.0' in text
    assert ('learnae_api_requests_total{method="GET",route="/api/devices",status="200"} 1.0'
            in text)


def test_dashboard_docs_and_openapi_are_served(api_client: TestClient) -> None:
    page = api_client.get("/")
    assert page.status_code == 200
    assert "<title>LEARNAE gateway</title>" in page.text
    assert "http" not in page.text.replace("http-equiv", "")  # no external resource
    assert api_client.get("/static/app.js").status_code == 200
    assert "openapi.json" in api_client.get("/docs").text
    paths = api_client.get("/openapi.json").json()["paths"]
    for path in ("/healthz", "/api/devices", "/api/devices/{device_id}/samples",
                 "/api/devices/{device_id}/config", "/api/model", "/api/model.tflite",
                 "/api/peers", "/api/rounds", "/metrics"):
        assert path in paths
    assert api_client.get("/api/quarantine").json() == []
    overview = api_client.get("/api/overview").json()
    assert (overview["gateway"], overview["model"], overview["models"]) == ("gw-api", None, [])


def test_hot_lists_are_cached_for_cache_ms(api_config: Any, api_store: Any) -> None:
    """With api.cache_ms, /api/devices is rebuilt at most that often; other paths never."""
    import dataclasses

    from prometheus_client import CollectorRegistry
    from support import fill_store

    from gateway.api import ServiceContext, StoreReader, create_app

    config = dataclasses.replace(api_config,
                                 api=dataclasses.replace(api_config.api, cache_ms=60_000))
    context = ServiceContext(config=config, token="t", store=StoreReader(config.db_path),
                             registry=CollectorRegistry())
    with TestClient(create_app(context)) as client:
        assert client.get("/api/devices").json()["total"] == 2
        assert client.get("/api/devices/dev-c").status_code == 404
        fill_store(config.db_path, {"dev-c": 3})
        assert client.get("/api/devices").json()["total"] == 2  # cached
        assert client.get("/api/devices", params={"limit": 10}).json()["total"] == 3  # new key
        assert client.get("/api/devices/dev-c").json()["stored"] == 3  # not cached
    context.store.close()
