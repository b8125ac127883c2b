"""Decides when a device has enough new data, and trains it through the pipeline.

Ingest must never wait for training: the service hands this class two callables (list the
devices, load one device's series as ``(ts, values, channels)``) and starts it. A thread
polls every ``check_interval_s``; a device is due when ``min_new_readings`` readings newer
than its last attempt have arrived. Training itself is ``gateway.learning.pipeline``,
run in one worker process (spawned, niceness raised by ``nice``: a busy trainer costs the
ingest process neither the GIL nor CPU priority). Each result is registered in the model
registry by this process (a small write) and passed to ``on_result``; a skip is a result
too, with its reason.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

from gateway.config import TrainingSection
from gateway.errors import SchedulerError, WorkerLost
from gateway.learning.pipeline import (
    TrainingJob,
    TrainingResult,
    current_versions,
    register_candidates,
    train_candidates,
)
from gateway.learning.promotion import promotion_counter
from gateway.learning.registry import ModelRegistry
from gateway.runtime.memory import release_free_memory
from gateway.runtime.parts import PeriodicPart
from gateway.runtime.workers import WorkerProcess

__all__ = ["SchedulerState", "TrainingOutcome", "TrainingScheduler"]

log = logging.getLogger(__name__)

Series = tuple[np.ndarray, np.ndarray, list[str]]
LoadSeries = Callable[[str], Series | None]
ListDevices = Callable[[], list[str]]


@dataclass(frozen=True)
class TrainingOutcome:
    """What one training attempt produced: a registered version, or a skip and why."""

    device: str
    status: str  # "trained" (and promoted) | "rejected" (by the guard) | "skipped" | "failed"
    version: int | None = None
    reason: str | None = None  # SkipReason value when skipped, the guard's code when rejected
    detail: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


class SchedulerState(enum.Enum):
    UNSTARTED = "unstarted"
    RUNNING = "running"
    STOPPED = "stopped"


class TrainingScheduler(PeriodicPart):
    """Start/stop background training; see the module doc. Keyword-only constructor."""

    thread_name = "training-scheduler"

    def __init__(
        self,
        *,
        list_devices: ListDevices,
        load_series: LoadSeries,
        registry_path: str | Path,
        settings: TrainingSection | None = None,
        on_result: Callable[[TrainingOutcome], None] | None = None,
        metrics_registry: CollectorRegistry | None = None,
    ) -> None:
        self.settings = settings or TrainingSection()
        self._list_devices = list_devices
        self._load_series = load_series
        self._registry_path = str(registry_path)
        self._on_result = on_result
        self._last_attempt: dict[str, float] = {}  # device -> newest reading time used
        self._state = SchedulerState.UNSTARTED
        super().__init__(log)
        self._worker = WorkerProcess(nice=self.settings.nice, name="learnae-training")
        self._lock = threading.Lock()
        reg = metrics_registry if metrics_registry is not None else REGISTRY
        self._runs = Counter(
            "learnae_training_runs", "Training attempts by outcome", ["outcome"], registry=reg
        )
        self._skips = Counter(
            "learnae_training_skips", "Training runs skipped, by reason", ["reason"], registry=reg
        )
        self._seconds = Histogram(
            "learnae_training_seconds",
            "Wall time of a training run",
            registry=reg,
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300),
        )
        self._promotions = promotion_counter(reg)

    @property
    def state(self) -> SchedulerState:
        return self._state

    def start(self) -> None:
        with self._lock:
            if self._state is not SchedulerState.UNSTARTED:
                raise SchedulerError(f"cannot start a scheduler that is {self._state.value}")
            self._state = SchedulerState.RUNNING
        super().start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop polling; a run in progress is cancelled (its worker process is ended)."""
        with self._lock:
            if self._state is SchedulerState.STOPPED:
                return
            self._state = SchedulerState.STOPPED
        self._stop.set()
        self._worker.stop()
        super().stop(timeout)

    def run_pass(self) -> list[TrainingOutcome]:
        return self.poll_once()

    def interval_s(self) -> float:
        return self.settings.check_interval_s

    def due(self, device: str, ts: np.ndarray, registry: ModelRegistry) -> bool:
        """True when enough readings newer than the last attempt for ``device`` exist."""
        if device not in self._last_attempt:
            latest = registry.latest(device, "forecast")
            self._last_attempt[device] = latest.data_end if latest is not None else -np.inf
        newer = int(np.count_nonzero(ts > self._last_attempt[device]))
        return newer >= max(self.settings.min_new_readings, 1)

    def poll_once(self) -> list[TrainingOutcome]:
        """Train every due device now (one at a time, in the worker); return the outcomes."""
        outcomes = []
        with ModelRegistry(self._registry_path) as registry:
            for device in self._list_devices():
                if self._stop.is_set():
                    break
                try:
                    series = self._load_series(device)
                except Exception:  # one device's store error must not stop the others
                    log.exception("loading the series of %r failed", device)
                    self._runs.labels("failed").inc()
                    continue
                if series is None:
                    continue
                ts, values, channels = series
                ts = np.asarray(ts, np.float64)
                if ts.shape[0] == 0 or not self.due(device, ts, registry):
                    continue
                cap = self.settings.max_readings
                if cap and ts.shape[0] > cap:
                    ts, values = ts[-cap:], np.asarray(values)[-cap:]
                outcome = self._train(device, ts, np.asarray(values), list(channels), registry)
                if outcome is not None:
                    outcomes.append(outcome)
        if outcomes:
            release_free_memory()  # the series loaded for training, freed: back to the system
        return outcomes

    def _train(self, device: str, ts: np.ndarray, values: np.ndarray, channels: list[str],
               registry: ModelRegistry) -> TrainingOutcome | None:
        job = TrainingJob([(device, ts, values, channels)], self.settings,
                          current_versions(registry, [device]))
        try:
            result: TrainingResult = self._worker.call(train_candidates, job)
        except WorkerLost:
            if self._stop.is_set():
                return None
            self._last_attempt[device] = float(np.nanmax(ts))  # no crash loop on this data
            outcome = TrainingOutcome(device, "failed", detail="training process died")
            self._runs.labels("failed").inc()
            self._emit(outcome)
            return outcome
        self._last_attempt[device] = float(np.nanmax(ts))
        self._seconds.observe(result.seconds)
        if device in result.skipped or device in result.failed:
            skip = result.skipped.get(device)
            status = "skipped" if skip is not None else "failed"
            detail = skip.detail if skip is not None else result.failed[device]
            outcome = TrainingOutcome(device, status, reason=None if skip is None else skip.reason,
                                      detail=detail, seconds=result.seconds)
            log.info("training %s %s: %s", device, status, detail)
        else:
            [(candidate, version)] = register_candidates(registry, result,
                                                         keep=self.settings.keep_versions)
            promoted = candidate.promoted
            outcome = TrainingOutcome(
                device,
                "trained" if promoted else "rejected",
                version=version,
                reason=None if promoted else candidate.result,
                detail=candidate.reason,
                metrics=dict(candidate.metadata["metrics"]),
                seconds=result.seconds,
            )
            self._promotions.labels(candidate.result).inc()
            log.info("trained %s: version %d %s (%s)", device, version,
                     "promoted" if promoted else "rejected", candidate.reason)
        self._runs.labels(outcome.status).inc()
        if outcome.status == "skipped" and outcome.reason:
            self._skips.labels(outcome.reason).inc()
        self._emit(outcome)
        return outcome

    def _emit(self, outcome: TrainingOutcome) -> None:
        if self._on_result is not None:
            try:
                self._on_result(outcome)
            except Exception:
                log.exception("on_result callback failed for %s", outcome.device)
