"""The live detector: readings in the store, a model trained by the scheduler, events in
SQLite, served at GET /api/devices/{id}/anomalies, counted in /metrics and sent to Home
Assistant. One spike is one event; a level shift is one event and flags stop."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from support import TOKEN

from gateway.api import ServiceContext, StoreReader, create_app
from gateway.api.sources import RegistryModels
from gateway.config import TrainingSection, config_from_dict
from gateway.integrations.homeassistant import HomeAssistantBridge, state_topic
from gateway.learning.monitor import AnomalyMonitor
from gateway.learning.registry import ModelRegistry
from gateway.learning.scheduler import TrainingScheduler
from gateway.store import Changes, Store, pack_values
from gateway.store.anomaly_events import AnomalyEventLog

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
    version = train(config, "dev-a")
    metrics = CollectorRegistry()
    monitor = AnomalyMonitor(config, registry=metrics)
    # first pass: the history, from the first readings (8 warm up, the newest is unfinished)
    assert monitor.poll_once() == 3000 - TrainingSection().window - 1
    # a clean signal: at most the false-alarm budget (1 a day) in its two days
    assert len(events_of(config, since=0.0)) <= 2
    counted = {name: metrics.get_sample_value(name) or 0.0 for name in COUNTERS}
    return {"config": config, "monitor": monitor, "metrics": metrics, "version": version,
            "counted": counted}


COUNTERS = ("learnae_anomaly_flags_total", "learnae_anomaly_events_total",
            "learnae_anomaly_scored_total")


def counted_since_history(gateway: dict[str, Any], name: str) -> float:
    return (gateway["metrics"].get_sample_value(name) or 0.0) - gateway["counted"][name]


def train(config: Any, device: str) -> int:
    """One training by the scheduler (its own worker process); the version registered."""
    reader = StoreReader(config.db_path)

    def load(name: str) -> Any:
        s = reader.get().read_series(name)
        return (s.ts, s.values, s.channels) if len(s) else None

    sched = TrainingScheduler(list_devices=lambda: [device], load_series=load,
                              registry_path=config.db_path, settings=config.training,
                              metrics_registry=CollectorRegistry())
    try:
        (outcome,) = sched.poll_once()
    finally:
        sched.stop()
        reader.close()
    assert outcome.status == "trained", outcome.detail
    return int(outcome.version)


HISTORY_END = T0 + 3000 * PERIOD  # the fixture's readings, which its first pass scores


def events_of(config: Any, device: str = "dev-a", since: float = HISTORY_END
              ) -> list[dict[str, Any]]:
    with AnomalyEventLog.open(config.db_path, readonly=True) as log:
        return [e for e in log.events(device) if e["start"] >= since]


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
    assert counted_since_history(gateway, "learnae_anomaly_flags_total") == 1
    assert counted_since_history(gateway, "learnae_anomaly_events_total") == 1
    assert counted_since_history(gateway, "learnae_anomaly_scored_total") == 200

    context = ServiceContext(config=config, token=TOKEN, store=StoreReader(config.db_path),
                             models=RegistryModels(config.db_path), registry=metrics)
    with TestClient(create_app(context)) as client:
        body = client.get("/api/devices/dev-a/anomalies", params={"since": HISTORY_END}).json()
        assert [(e["id"], e["start"], e["channels"]) for e in body] == [
            (event["id"], event["start"], ["temp"])]
        assert client.get("/api/devices/dev-a/anomalies",
                          params={"since": T0 + 3101 * PERIOD}).json() == []
        assert client.get("/api/devices/nobody/anomalies").status_code == 404
        assert client.get("/api/devices/BAD!/anomalies").status_code == 422
        total = metrics.get_sample_value("learnae_anomaly_events_total")
        assert f"learnae_anomaly_events_total {total}" in client.get("/metrics").text
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


def test_before_its_first_model_a_device_is_scored_against_persistence(tmp_path: Path) -> None:
    config = config_from_dict({
        "gateway": {"id": "gw-new", "data_dir": str(tmp_path / "data")},
        "training": {"period_s": PERIOD}, "api": {"cache_ms": 0},
    }, env={})
    config.gateway.data_dir.mkdir(parents=True)
    metrics = CollectorRegistry()
    monitor = AnomalyMonitor(config, registry=metrics)
    commit(config.db_path, "dev-b", 0, signal(np.arange(20), 0))
    assert monitor.poll_once() == 0  # too few readings to calibrate on: nothing yet
    assert events_of(config, "dev-b", since=0.0) == []
    first = signal(np.arange(20, 400), 0)
    first[300, 1] -= 4.0  # a spike on hum among the first readings
    commit(config.db_path, "dev-b", 20, first)
    assert monitor.poll_once() > 300  # from the first readings on
    (event,) = events_of(config, "dev-b", since=0.0)
    assert (event["start"], event["end"]) == (T0 + 320 * PERIOD, T0 + 320 * PERIOD)
    assert event["channels"] == ["hum"] and event["model_version"] is None
    # more readings: persistence is calibrated again (they doubled), scoring goes on
    later = signal(np.arange(400, 900), 0)
    later[250, 0] += 4.0
    commit(config.db_path, "dev-b", 400, later)
    assert monitor.poll_once() == 500
    assert sorted(e["start"] for e in events_of(config, "dev-b", since=0.0)) == [T0 + 320 * PERIOD,
                                                                       T0 + 650 * PERIOD]
    assert metrics.get_sample_value("learnae_anomaly_events_total") == 2
    # the first model takes over where persistence stopped: nothing is scored twice
    config = dataclasses.replace(config, training=dataclasses.replace(
        config.training, epochs=12, min_new_readings=1))
    version = train(config, "dev-b")
    after = signal(np.arange(900, 1100), 0)
    after[150, 0] += 4.0
    commit(config.db_path, "dev-b", 900, after)
    assert monitor.poll_once() == 200
    newest = max(events_of(config, "dev-b", since=0.0), key=lambda e: e["start"])
    assert newest["start"] == T0 + 1050 * PERIOD and newest["model_version"] == version


def test_a_restarted_detector_resumes_where_it_stopped(gateway) -> None:
    config = gateway["config"]
    commit(config.db_path, "dev-a", 3000, signal(np.arange(3000, 3100), 4))
    restarted = AnomalyMonitor(config, registry=CollectorRegistry())  # a new process's
    # the history was scored before the restart: only the new readings are (the newest
    # slot of the last pass, then all new ones but the last)
    assert restarted.poll_once() == 100
