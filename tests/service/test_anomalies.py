"""The live detector: readings in the store, a model trained by the scheduler, events in
SQLite, served at GET /api/devices/{id}/anomalies, counted in /metrics and sent to Home
Assistant. One spike is one event; a level shift is one event and flags stop."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from gateway.anomaly_monitor import AnomalyMonitor
from gateway.api import ServiceContext, StoreReader, create_app
from gateway.api.sources import RegistryModels
from gateway.config import config_from_dict
from gateway.homeassistant import HomeAssistantBridge, state_topic
from gateway.learning.registry import ModelRegistry
from gateway.learning.scheduler import TrainingScheduler
from gateway.store import Changes, Store, pack_values
from gateway.store.anomaly_events import AnomalyEventLog

from .support import TOKEN

PERIOD = 60.0
T0 = 1_700_000_000.0


def signal(i: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.stack([20 + np.sin(i / 15), 50 + 2 * np.cos(i / 15)], axis=1)
    return base + rng.normal(0, 0.05, base.shape)


def commit(path: Path, device: str, first: int, values: np.ndarray) -> None:
    with Store.open(path) as store:
        key = store.register_device(device)
        cset = store.channel_set(("temp", "hum"))
        changes = Changes()
        changes.rows[key] = [(key, 1, first + k, T0 + (first + k) * PERIOD, cset,
                              pack_values([float(v) for v in row]), 0)
                             for k, row in enumerate(values)]
        changes.boots[(key, 1)] = T0
        changes.seen[key] = T0 + (first + len(values) - 1) * PERIOD
        store.commit(changes)


@pytest.fixture
def gateway(tmp_path: Path) -> dict[str, Any]:
    config = config_from_dict({
        "gateway": {"id": "gw-anom", "data_dir": str(tmp_path / "data")},
        "training": {"period_s": PERIOD, "epochs": 12, "min_new_readings": 1,
                     "anomaly_false_alarms_per_day": 1},
        "homeassistant": {"enabled": True},
        "api": {"cache_ms": 0},
    }, env={})
    config.gateway.data_dir.mkdir(parents=True)
    commit(config.db_path, "dev-a", 0, signal(np.arange(3000), 0))
    reader = StoreReader(config.db_path)

    def load(device: str) -> Any:
        s = reader.get().read_series(device)
        return (s.ts, s.values, s.channels) if len(s) else None

    sched = TrainingScheduler(list_devices=lambda: ["dev-a"], load_series=load,
                              registry_path=config.db_path, settings=config.training,
                              metrics_registry=CollectorRegistry())
    try:
        (outcome,) = sched.poll_once()  # the scheduler's own worker process
    finally:
        sched.stop()
        reader.close()
    assert outcome.status == "trained", outcome.detail
    metrics = CollectorRegistry()
    monitor = AnomalyMonitor(config, registry=metrics)
    assert monitor.poll_once() == 0  # first pass: warms up on the latest readings
    return {"config": config, "monitor": monitor, "metrics": metrics,
            "version": outcome.version}


def events_of(config: Any, device: str = "dev-a") -> list[dict[str, Any]]:
    with AnomalyEventLog.open(config.db_path, readonly=True) as log:
        return log.events(device)


def test_model_carries_a_calibrated_threshold(gateway) -> None:
    with ModelRegistry(gateway["config"].db_path) as registry:
        meta = registry.get(gateway["version"]).metadata
    det = meta["detector"]
    assert det["threshold"] >= 4.0 and det["held_events"] <= det["held_days"] * 1.0
    assert meta["threshold"] == det["board_threshold"]  # what the board's LEM1 carries


def test_one_spike_is_one_event_served_counted_and_sent(gateway) -> None:
    config, monitor, metrics = gateway["config"], gateway["monitor"], gateway["metrics"]
    new = signal(np.arange(3000, 3200), 1)
    new[100, 0] += 3.0  # one spike on temp
    commit(config.db_path, "dev-a", 3000, new)
    # every finished slot: the one newest at warm-up, then all new ones but the last
    assert monitor.poll_once() == 200
    (event,) = events_of(config)
    assert (event["start"], event["end"]) == (T0 + 3100 * PERIOD, T0 + 3100 * PERIOD)
    assert event["channels"] == ["temp"] and event["flags"] == 1 and not event["open"]
    assert event["kind"] == "anomaly" and event["model_version"] == gateway["version"]
    assert metrics.get_sample_value("learnae_anomaly_flags_total") == 1
    assert metrics.get_sample_value("learnae_anomaly_events_total") == 1
    assert metrics.get_sample_value("learnae_anomaly_scored_total") == 200

    context = ServiceContext(config=config, token=TOKEN, store=StoreReader(config.db_path),
                             models=RegistryModels(config.db_path), registry=metrics)
    with TestClient(create_app(context)) as client:
        body = client.get("/api/devices/dev-a/anomalies").json()
        assert [(e["id"], e["start"], e["channels"]) for e in body] == [
            (event["id"], event["start"], ["temp"])]
        assert client.get("/api/devices/dev-a/anomalies",
                          params={"since": T0 + 3101 * PERIOD}).json() == []
        assert client.get("/api/devices/nobody/anomalies").status_code == 404
        assert client.get("/api/devices/BAD!/anomalies").status_code == 422
        assert "learnae_anomaly_events_total 1.0" in client.get("/metrics").text
    context.store.close()

    sent: dict[str, bytes] = {}
    bridge = HomeAssistantBridge(config, sent.__setitem__, registry=CollectorRegistry())
    bridge.publish_once()
    assert json.loads(sent[state_topic(config, "dev-a")])["anomaly_event"] is False
    assert any(k.endswith("/anomaly_event/config") for k in sent)


def test_a_level_shift_is_one_event_and_flags_stop(gateway) -> None:
    config, monitor = gateway["config"], gateway["monitor"]
    new = signal(np.arange(3000, 3400), 2)
    new[50:, 1] += 1.5  # hum's offset changes for good
    for first in range(0, 400, 40):  # arriving in batches, scored pass after pass
        commit(config.db_path, "dev-a", 3000 + first, new[first:first + 40])
        monitor.poll_once()
    (event,) = events_of(config)
    assert event["kind"] == "level_shift" and event["channels"] == ["hum"]
    assert event["start"] == T0 + 3050 * PERIOD
    assert event["end"] <= T0 + (3050 + config.training.anomaly_shift_after) * PERIOD


def test_an_open_event_turns_the_home_assistant_sensor_on(gateway) -> None:
    config, monitor = gateway["config"], gateway["monitor"]
    new = signal(np.arange(3000, 3102), 3)
    new[100, 0] += 3.0  # the spike is in the last finished slot: the event is still open
    commit(config.db_path, "dev-a", 3000, new)
    monitor.poll_once()
    (event,) = events_of(config)
    assert event["open"]
    sent: dict[str, bytes] = {}
    HomeAssistantBridge(config, sent.__setitem__, registry=CollectorRegistry()).publish_once()
    assert json.loads(sent[state_topic(config, "dev-a")])["anomaly_event"] is True
