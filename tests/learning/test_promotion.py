"""The promotion guard: a worse version is registered as rejected and never deployed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from learning_streams import sensor_stream
from prometheus_client import CollectorRegistry

from gateway.api.sources import RegistryModels
from gateway.config import ApiSection, GatewayConfig, GatewaySection, TrainingSection
from gateway.integrations.model_push import ModelPusher
from gateway.learning.forecast import train_forecast
from gateway.learning.promotion import WORSE_THAN_CURRENT, WORSE_THAN_PERSISTENCE, judge
from gateway.learning.registry import ModelRegistry
from gateway.learning.scheduler import TrainingScheduler

GOOD = TrainingSection(epochs=20, min_new_readings=100)
# a different window cannot continue the current model; no epochs and a persistence start
# leave the new version exactly persistence
WORSE = dataclasses.replace(GOOD, window=4, epochs=0, init="persistence")


def test_guard_compares_with_persistence_and_the_current_version() -> None:
    s = sensor_stream(2500, seed=4)
    good = train_forecast(s.ts, s.values, s.channels, GOOD)
    ridge = dataclasses.replace(GOOD, epochs=0, init="ridge")  # the ridge fit, untrained
    ridge_only = train_forecast(s.ts, s.values, s.channels, ridge)
    persistence = train_forecast(s.ts, s.values, s.channels, WORSE)

    first = judge(good, None, s.ts, s.values)
    assert first.promoted and first.figures["mae"] < first.figures["persistence_mae"]
    flat = judge(persistence, None, s.ts, s.values)
    assert not flat.promoted and flat.code == WORSE_THAN_PERSISTENCE
    assert flat.figures["mae"] == flat.figures["persistence_mae"]  # exactly persistence
    worse = judge(ridge_only, good, s.ts, s.values, current_version=7)
    assert not worse.promoted and worse.code == WORSE_THAN_CURRENT, worse
    assert "version 7" in worse.reason
    assert worse.figures["persistence_mae"] > worse.figures["mae"] > worse.figures["current_mae"]


def test_rejected_version_is_registered_and_the_board_keeps_its_model(tmp_path: Path) -> None:
    s = sensor_stream(1500, seed=1)
    db = tmp_path / "gateway.sqlite3"
    series = {"dev": (s.ts[:1000], s.values[:1000], s.channels)}
    metrics = CollectorRegistry()
    scheduler = TrainingScheduler(list_devices=lambda: ["dev"], load_series=series.get,
                                  registry_path=db, settings=GOOD, metrics_registry=metrics)
    try:
        [first] = scheduler.poll_once()
        assert first.status == "trained"
        series["dev"] = (s.ts, s.values, s.channels)
        scheduler.settings = WORSE
        [second] = scheduler.poll_once()
    finally:
        scheduler.stop()
    assert second.status == "rejected" and second.reason == WORSE_THAN_PERSISTENCE
    assert "not below persistence" in second.detail
    with ModelRegistry(db) as registry:
        assert registry.latest("dev").version == second.version
        assert registry.current("dev").version == first.version
        assert registry.get(second.version).status == "rejected"
    assert metrics.get_sample_value("learnae_model_promotions_total",
                                    {"result": WORSE_THAN_PERSISTENCE}) == 1.0
    assert metrics.get_sample_value("learnae_model_promotions_total",
                                    {"result": "promoted"}) == 1.0

    models = RegistryModels(db)
    assert models.current("dev")["version"] == first.version
    [listed] = models.latest_per_device()
    assert listed["version"] == first.version and listed["status"] == "promoted"
    [rejected] = listed["rejected"]
    assert rejected["version"] == second.version
    assert rejected["result"] == WORSE_THAN_PERSISTENCE
    assert rejected["figures"]["mae"] == rejected["figures"]["persistence_mae"]
    with ModelRegistry(db) as registry:
        served = models.artifact("edge", "dev")
        from gateway.learning.export import export_model

        assert served == export_model(registry.get(first.version), "edge")

    # the pusher publishes the promoted version and refuses the rejected one
    config = GatewayConfig(gateway=GatewaySection(id="gw", data_dir=tmp_path),
                           api=ApiSection(push_model="all"))
    assert config.db_path == db
    published: list[tuple[str, bytes]] = []
    pusher = ModelPusher(config, lambda t, b: published.append((t, b)),
                         registry=CollectorRegistry())
    assert not pusher.push("dev", second.version) and published == []
    assert pusher.push("dev", first.version)
    assert np.frombuffer(published[0][1][:4], np.uint8).tobytes() == b"LEM1"
