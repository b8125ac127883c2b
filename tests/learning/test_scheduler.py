"""Background training: due devices train in a separate niced process; skips carry reasons."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from learning_streams import sensor_stream
from prometheus_client import CollectorRegistry

from gateway.config import TrainingSection
from gateway.learning.forecast import ForecastModel
from gateway.learning.registry import ModelRegistry
from gateway.learning.scheduler import (
    SchedulerError,
    SchedulerState,
    TrainingOutcome,
    TrainingScheduler,
)

SETTINGS = TrainingSection(epochs=8, min_new_readings=200, check_interval_s=0.2)


class FakeStore:
    """In-memory stand-in for the store's read_series (the real one is SQLite)."""

    def __init__(self) -> None:
        good = sensor_stream(1200, seed=1)
        flat = sensor_stream(1200, seed=2)
        flat.values[:, 2] = 400.0
        few = sensor_stream(100, seed=3)
        self.series = {
            "good": (good.ts[:900], good.values[:900], good.channels),
            "flat": (flat.ts, flat.values, flat.channels),
            "few": (few.ts, few.values, few.channels),
        }
        self.more = (good.ts, good.values, good.channels)
        self.loads: list[str] = []

    def list_devices(self) -> list[str]:
        return list(self.series)

    def load(self, device: str):
        self.loads.append(device)
        return self.series.get(device)


def test_poll_trains_due_devices_and_names_skips(tmp_path) -> None:
    store = FakeStore()
    seen: list[TrainingOutcome] = []
    metrics = CollectorRegistry()
    sched = TrainingScheduler(
        list_devices=store.list_devices,
        load_series=store.load,
        registry_path=tmp_path / "db.sqlite3",
        settings=SETTINGS,
        on_result=seen.append,
        metrics_registry=metrics,
    )
    try:
        outcomes = {o.device: o for o in sched.poll_once()}
        assert set(outcomes) == {"good", "flat"}  # "few" has < min_new_readings
        assert outcomes["good"].status == "trained" and outcomes["good"].version == 1
        assert outcomes["good"].metrics["test_mae"] > 0
        assert outcomes["flat"].status == "skipped"
        assert outcomes["flat"].reason == "constant_channel"
        assert "'gas'" in outcomes["flat"].detail
        assert seen == list(outcomes.values())
        assert (
            metrics.get_sample_value("learnae_training_skips_total", {"reason": "constant_channel"})
            == 1
        )
        assert metrics.get_sample_value("learnae_training_runs_total", {"outcome": "trained"}) == 1
        assert metrics.get_sample_value("learnae_training_runs_total", {"outcome": "skipped"}) == 1

        assert sched.poll_once() == []  # nothing new since the last attempt

        store.series["good"] = store.more  # 300 new readings arrive
        (again,) = sched.poll_once()
        assert again.device == "good" and again.version == 2
    finally:
        sched.stop()
    with ModelRegistry(tmp_path / "db.sqlite3") as reg:
        v2 = reg.get(2)
        assert v2.parent_version == 1 and v2.data_end == float(store.more[0][-1])
        model = ForecastModel.from_version(v2)
        assert model.channels == ["temp", "hum", "gas"]
        assert all(np.all(np.isfinite(w)) for w in v2.weights.values())


def test_restart_resumes_from_registry(tmp_path) -> None:
    store = FakeStore()
    store.series = {"good": store.series["good"]}
    path = tmp_path / "db.sqlite3"
    first = TrainingScheduler(
        list_devices=store.list_devices,
        load_series=store.load,
        registry_path=path,
        settings=SETTINGS,
        metrics_registry=CollectorRegistry(),
    )
    try:
        assert [o.status for o in first.poll_once()] == ["trained"]
    finally:
        first.stop()
    second = TrainingScheduler(
        list_devices=store.list_devices,
        load_series=store.load,
        registry_path=path,
        settings=SETTINGS,
        metrics_registry=CollectorRegistry(),
    )
    try:
        assert second.poll_once() == []  # the registered model already covers this data
    finally:
        second.stop()


def test_start_stop_lifecycle(tmp_path) -> None:
    store = FakeStore()
    done = threading.Event()
    results: list[TrainingOutcome] = []

    def on_result(outcome: TrainingOutcome) -> None:
        results.append(outcome)
        if len(results) == 2:
            done.set()

    sched = TrainingScheduler(
        list_devices=store.list_devices,
        load_series=store.load,
        registry_path=tmp_path / "db.sqlite3",
        settings=SETTINGS,
        on_result=on_result,
        metrics_registry=CollectorRegistry(),
    )
    assert sched.state is SchedulerState.UNSTARTED
    sched.start()
    assert sched.state is SchedulerState.RUNNING
    with pytest.raises(SchedulerError, match="running"):
        sched.start()
    assert done.wait(60)
    sched.stop()
    assert sched.state is SchedulerState.STOPPED
    assert sorted(o.status for o in results) == ["skipped", "trained"]
    sched.stop()  # idempotent


def poll_good_device(tmp_path, settings: TrainingSection):
    """One scheduler poll over the one well-formed device, with ``settings``."""
    store = FakeStore()
    store.series = {"good": store.series["good"]}
    sched = TrainingScheduler(
        list_devices=store.list_devices,
        load_series=store.load,
        registry_path=tmp_path / "db.sqlite3",
        settings=settings,
        metrics_registry=CollectorRegistry(),
    )
    try:
        (outcome,) = sched.poll_once()
    finally:
        sched.stop()
    return outcome


def test_unusable_settings_fail_the_run_not_the_service(tmp_path) -> None:
    outcome = poll_good_device(tmp_path, TrainingSection(window=0, min_new_readings=200))
    assert outcome.status == "failed" and outcome.version is None
    assert "window must be >= 1, got 0" in outcome.detail


def test_classify_task_is_skipped_until_labels_exist(tmp_path) -> None:
    outcome = poll_good_device(
        tmp_path, TrainingSection(task="classify", min_new_readings=200))
    assert (outcome.status, outcome.reason) == ("skipped", "unsupported")


def test_a_failing_loader_skips_only_that_device(tmp_path) -> None:
    store = FakeStore()
    store.series = {"broken": None, "good": store.series["good"]}

    def load(device: str):
        if device == "broken":
            raise OSError("disk I/O error")
        return store.load(device)

    metrics = CollectorRegistry()
    sched = TrainingScheduler(
        list_devices=store.list_devices,
        load_series=load,
        registry_path=tmp_path / "db.sqlite3",
        settings=SETTINGS,
        metrics_registry=metrics,
    )
    try:
        assert [(o.device, o.status) for o in sched.poll_once()] == [("good", "trained")]
    finally:
        sched.stop()
    assert metrics.get_sample_value("learnae_training_runs_total", {"outcome": "failed"}) == 1


def test_a_killed_worker_is_a_failed_run_and_the_next_one_works(tmp_path) -> None:
    import time

    import psutil

    store = FakeStore()
    store.series = {"good": store.series["good"]}
    slow = TrainingSection(epochs=100000, patience=0, min_new_readings=200)
    sched = TrainingScheduler(
        list_devices=store.list_devices,
        load_series=store.load,
        registry_path=tmp_path / "db.sqlite3",
        settings=slow,
        metrics_registry=CollectorRegistry(),
    )
    results: list[list[TrainingOutcome]] = []
    poller = threading.Thread(target=lambda: results.append(sched.poll_once()))
    poller.start()
    try:
        worker = None
        deadline = time.monotonic() + 60
        while worker is None and time.monotonic() < deadline:
            for child in psutil.Process().children():
                if "spawn_main" in " ".join(child.cmdline()):
                    worker = child
            time.sleep(0.1)
        assert worker is not None
        time.sleep(1.0)  # let it start training
        worker.kill()
        poller.join(60)
        ((outcome,),) = results
        assert (outcome.status, outcome.detail) == ("failed", "training process died")
        store.series["good"] = store.more  # new data: a fresh worker trains it
        sched.settings = SETTINGS
        (again,) = sched.poll_once()
        assert again.status == "trained"
    finally:
        sched.stop()
