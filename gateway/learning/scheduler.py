"""Decides when a device has enough new data, and trains it in a separate, niced process.

Ingest must never wait for training: the service hands this class two callables (list the
devices, load one device's series as ``(ts, values, channels)``) and starts it. A thread
polls every ``check_interval_s``; a device is due when ``min_new_readings`` readings newer
than its last attempt have arrived. Training runs in one worker process (spawned, niceness
raised by ``nice``) so a busy trainer costs the ingest process neither the GIL nor CPU
priority. Results are registered in the model registry by this process (a small write)
and passed to ``on_result``; a skip is a result too, with its reason.
"""

from __future__ import annotations

import concurrent.futures
import enum
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

from gateway.config import TrainingSection
from gateway.errors import SchedulerError
from gateway.learning.calibration import calibrated_metadata
from gateway.learning.dataset import SkipReason, SkipTraining
from gateway.learning.forecast import ForecastModel, train_forecast
from gateway.learning.mlp import Weights
from gateway.learning.promotion import judge, promotion_counter
from gateway.learning.registry import PROMOTED, REJECTED, ModelRegistry
from gateway.learning.regular import regular_series
from gateway.runtime.memory import release_free_memory

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
    reason: str | None = None  # SkipReason value when skipped
    detail: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


class SchedulerState(enum.Enum):
    UNSTARTED = "unstarted"
    RUNNING = "running"
    STOPPED = "stopped"


def _lower_priority(increment: int) -> None:
    if increment > 0:
        try:
            os.nice(increment)
        except OSError:  # pragma: no cover - nice can only fail if increment is invalid
            log.warning("could not lower training priority by %d", increment)


def _train_job(
    device: str,
    ts: np.ndarray,
    values: np.ndarray,
    channels: list[str],
    settings: TrainingSection,
    previous: tuple[dict[str, Any], Weights] | None,
    previous_version: int | None = None,
) -> dict[str, Any]:
    """Runs in the worker process; returns plain data (no exceptions for bad data).

    ``previous`` is the device's current (promoted) version: training continues it and
    the promotion guard compares the new version with it."""
    started = time.perf_counter()
    if settings.task != "forecast":
        return {
            "status": "skipped",
            "reason": SkipReason.UNSUPPORTED.value,
            "detail": f"task {settings.task!r} needs labels, which the store does not hold yet",
            "seconds": 0.0,
        }
    prev_model = ForecastModel.from_metadata(*previous) if previous is not None else None
    # irregular readings on the grid, short gaps interpolated, so that they train
    raw_ts = np.asarray(ts, np.float64)
    ts, values = regular_series(ts, values, settings.period_s, settings.anomaly_max_fill)
    try:
        model = train_forecast(ts, values, channels, settings, previous=prev_model)
        finite = raw_ts[np.isfinite(raw_ts)]  # data range: of the readings, not the grid
        model.data_start, model.data_end = float(finite.min()), float(finite.max())
        model.readings = int(finite.shape[0])
    except SkipTraining as exc:
        return {
            "status": "skipped",
            "reason": exc.reason.value,
            "detail": exc.detail,
            "seconds": time.perf_counter() - started,
        }
    except Exception as exc:  # a bug or bad settings: report it, keep the service up
        return {
            "status": "failed",
            "reason": None,
            "detail": f"{type(exc).__name__}: {exc}",
            "seconds": time.perf_counter() - started,
        }
    decision = judge(model, prev_model, ts, values, test_fraction=settings.test_fraction,
                     current_version=previous_version)
    # the detector's threshold, calibrated to the false-alarm budget, for gateway and board
    meta = calibrated_metadata(model, ts, values, settings)
    meta["promotion"] = {"promoted": decision.promoted, "result": decision.code,
                         "reason": decision.reason, "figures": decision.figures}
    return {
        "status": "trained" if decision.promoted else "rejected",
        "metadata": meta,
        "weights": model.weights,
        "reason": None if decision.promoted else decision.code,
        "detail": decision.reason,
        "seconds": time.perf_counter() - started,
    }


class TrainingScheduler:
    """Start/stop background training; see the module doc. Keyword-only constructor."""

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
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
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
        self._thread = threading.Thread(target=self._loop, name="training-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop polling; a run in progress is cancelled (its worker process is ended)."""
        with self._lock:
            if self._state is SchedulerState.STOPPED:
                return
            self._state = SchedulerState.STOPPED
        self._stop.set()
        self._end_pool()
        if self._thread is not None:
            self._thread.join(timeout)
        self._end_pool()  # a run that began while stopping may have made a new pool

    def _end_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            for proc in list(getattr(pool, "_processes", {}).values()):
                proc.terminate()  # the worker is ours; training is restartable
            pool.shutdown(wait=True, cancel_futures=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:  # keep the service alive; the next poll retries
                log.exception("training poll failed")
            self._stop.wait(self.settings.check_interval_s)

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_lower_priority,
                initargs=(self.settings.nice,),
            )
        return self._pool

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

    def _train(
        self,
        device: str,
        ts: np.ndarray,
        values: np.ndarray,
        channels: list[str],
        registry: ModelRegistry,
    ) -> TrainingOutcome | None:
        latest = registry.latest_version(device, "forecast")
        current = registry.current(device, "forecast")
        previous = (current.metadata, current.weights) if current is not None else None
        future = self._executor().submit(
            _train_job, device, ts, values, channels, self.settings, previous,
            current.version if current is not None else None,
        )
        try:
            result = future.result()
        except (concurrent.futures.CancelledError, concurrent.futures.BrokenExecutor):
            if self._stop.is_set():
                return None
            broken, self._pool = self._pool, None
            if broken is not None:
                broken.shutdown(wait=False, cancel_futures=True)
            self._last_attempt[device] = float(np.nanmax(ts))  # no crash loop on this data
            outcome = TrainingOutcome(device, "failed", detail="training process died")
            self._runs.labels("failed").inc()
            self._emit(outcome)
            return outcome
        self._last_attempt[device] = float(np.nanmax(ts))
        self._seconds.observe(result["seconds"])
        if result["status"] in ("skipped", "failed"):
            outcome = TrainingOutcome(
                device,
                result["status"],
                reason=result["reason"],
                detail=result["detail"],
                seconds=result["seconds"],
            )
            log.info("training %s %s: %s", device, result["status"], result["detail"])
        else:
            meta = result["metadata"]
            promoted = result["status"] == "trained"
            version = registry.register(
                device,
                "forecast",
                result["weights"],
                meta,
                parent_version=latest,
                status=PROMOTED if promoted else REJECTED,
                reason=None if promoted else result["detail"],
                keep=self.settings.keep_versions,
            )
            outcome = TrainingOutcome(
                device,
                result["status"],
                version=version,
                reason=result["reason"],
                detail=result["detail"],
                metrics=dict(meta["metrics"]),
                seconds=result["seconds"],
            )
            self._promotions.labels(result["reason"] or "promoted").inc()
            log.info("trained %s: version %d %s (%s)", device, version,
                     "promoted" if promoted else "rejected", result["detail"])
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
