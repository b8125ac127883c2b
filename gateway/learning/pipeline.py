"""The training pipeline: train, judge, calibrate, register. The one path every model takes.

Two callers decide *when* to train: the scheduler (a device with enough new readings,
its own model continued) and the LEARNAE round loop (every local device at once, from
the weights fused from peers). Both hand a ``TrainingJob`` to ``train_candidates``, a pure
function run in the worker process (``gateway.runtime.workers``):

1. each device's readings go onto its grid (short gaps interpolated);
2. a model is trained: with ``start`` None, each device continues its current model
   (``train_forecast``); with ``start``, one network is trained on the windows of all
   devices from those weights, then personalised per device (the better of it and a short
   local fine-tune, ``gateway.learning.federated``);
3. the promotion guard judges it against persistence and the device's current version;
4. the anomaly detector's threshold is calibrated to the false-alarm budget on the
   device's series (for the gateway and the board's LEM scorer alike).

``register_candidates`` then records each candidate in the model registry, promoted or
rejected (a small write, in the service's process), and ``run_pipeline`` does both.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gateway.config import TrainingSection
from gateway.errors import SkipTraining
from gateway.learning.calibration import calibrated_metadata
from gateway.learning.dataset import SkipReason
from gateway.learning.forecast import ForecastModel
from gateway.learning.mlp import Weights
from gateway.learning.promotion import judge
from gateway.learning.registry import PROMOTED, REJECTED, ModelRegistry
from gateway.learning.regular import regular_series

__all__ = ["Candidate", "Current", "DeviceSeries", "Skip", "TrainingJob", "TrainingResult",
           "current_versions", "register_candidates", "run_pipeline", "train_candidates"]

TASK = "forecast"

# (device, ts, values, channels): a device's readings as the store reads them
DeviceSeries = tuple[str, np.ndarray, np.ndarray, list[str]]


@dataclass(frozen=True)
class Current:
    """A device's current (promoted) version: what training continues and is judged by."""

    metadata: dict[str, Any]
    weights: Weights
    version: int


@dataclass(frozen=True)
class TrainingJob:
    series: list[DeviceSeries]
    settings: TrainingSection
    current: dict[str, Current] = field(default_factory=dict)
    start: Weights | None = None  # a round's fused weights; None: each device its own model


@dataclass(frozen=True)
class Candidate:
    """A trained, judged and calibrated model version, not yet registered."""

    device: str
    metadata: dict[str, Any]  # with "promotion": promoted, result, reason, figures
    weights: Weights

    @property
    def promoted(self) -> bool:
        return bool(self.metadata["promotion"]["promoted"])

    @property
    def result(self) -> str:
        """"promoted", or the guard's reason code (``gateway.learning.promotion``)."""
        return str(self.metadata["promotion"]["result"])

    @property
    def reason(self) -> str:
        """The guard's sentence, with its figures."""
        return str(self.metadata["promotion"]["reason"])


@dataclass(frozen=True)
class Skip:
    reason: str | None  # a SkipReason value; None where only the detail is known
    detail: str


@dataclass
class TrainingResult:
    candidates: list[Candidate] = field(default_factory=list)
    skipped: dict[str, Skip] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)  # device -> what went wrong
    shared: Weights | None = None  # a round's shared weights (``start`` if none trained)
    seconds: float = 0.0


def train_candidates(job: TrainingJob) -> TrainingResult:
    """Steps 1-4 for every device of ``job``: pure (data in, data out), so it runs in the
    worker process. Data that cannot train a device is a ``Skip``, not an exception."""
    started = time.perf_counter()
    if job.settings.task != TASK:
        detail = f"task {job.settings.task!r} needs labels, which the store does not hold yet"
        result = TrainingResult(skipped={d: Skip(SkipReason.UNSUPPORTED.value, detail)
                                         for d, *_ in job.series}, shared=job.start)
    elif job.start is None:
        result = _each_device(job)
    else:
        result = _shared_round(job, job.start)
    result.seconds = time.perf_counter() - started
    return result


def _on_grid(job: TrainingJob) -> list[DeviceSeries]:
    """Step 1: irregular readings on the grid, short gaps interpolated, so that they train."""
    s = job.settings
    return [(device, *regular_series(ts, values, s.period_s, s.anomaly_max_fill), channels)
            for device, ts, values, channels in job.series]


def _previous(job: TrainingJob, device: str) -> ForecastModel | None:
    current = job.current.get(device)
    return None if current is None else ForecastModel.from_metadata(current.metadata,
                                                                    current.weights)


def _assess(job: TrainingJob, device: str, model: ForecastModel, previous: ForecastModel | None,
            ts: np.ndarray, values: np.ndarray, **extra: Any) -> Candidate:
    """Steps 3 and 4: judged against persistence and the current version, then calibrated."""
    current = job.current.get(device)
    decision = judge(model, previous, ts, values, test_fraction=job.settings.test_fraction,
                     current_version=None if current is None else current.version)
    meta = calibrated_metadata(model, ts, values, job.settings)
    meta.update(extra)
    meta["promotion"] = {"promoted": decision.promoted, "result": decision.code,
                         "reason": decision.reason, "figures": decision.figures}
    return Candidate(device, meta, model.weights)


def _each_device(job: TrainingJob) -> TrainingResult:
    """Step 2 for the scheduler: each device continues its own current model."""
    from gateway.learning.forecast import train_forecast

    result = TrainingResult()
    for (device, raw_ts, _, _), (_, ts, values, channels) in zip(job.series, _on_grid(job),
                                                                 strict=True):
        previous = _previous(job, device)
        try:
            model = train_forecast(ts, values, channels, job.settings, previous=previous)
        except SkipTraining as exc:
            result.skipped[device] = Skip(str(exc.reason.value), exc.detail)
            continue
        except Exception as exc:  # a bug or bad settings: reported, the service stays up
            result.failed[device] = f"{type(exc).__name__}: {exc}"
            continue
        finite = np.asarray(raw_ts, np.float64)
        finite = finite[np.isfinite(finite)]  # data range: of the readings, not the grid
        model.data_start, model.data_end = float(finite.min()), float(finite.max())
        model.readings = int(finite.shape[0])
        result.candidates.append(_assess(job, device, model, previous, ts, values))
    return result


def _shared_round(job: TrainingJob, start: Weights) -> TrainingResult:
    """Step 2 for a LEARNAE round: one network on every device's windows, personalised."""
    from gateway.learning.federated import personalise, prepare_devices, spec_for, train_shared
    from gateway.learning.forecast import finish_model, train_config
    from gateway.learning.mlp import check_weights

    series = _on_grid(job)
    devices, skipped, comp = prepare_devices(series, job.settings)
    result = TrainingResult(skipped={d: Skip(None, why) for d, why in skipped.items()},
                            shared=start)
    if not devices or comp is None:
        return result
    spec = spec_for(job.settings, comp)
    check_weights(spec, start)
    try:
        shared = train_shared(spec, start, devices, train_config(job.settings))
    except SkipTraining as exc:
        result.skipped.update({d.device: Skip(str(exc.reason.value), exc.detail)
                               for d in devices})
        return result
    result.shared = shared
    grid = {device: (ts, values) for device, ts, values, _ in series}
    for d in devices:
        try:
            weights, choice = personalise(spec, shared, d, job.settings)
            model = finish_model(spec, weights, d.ds, comp, job.settings, ridge=d.ridge)
        except SkipTraining as exc:
            result.skipped[d.device] = Skip(str(exc.reason.value), exc.detail)
            continue
        result.candidates.append(_assess(job, d.device, model, _previous(job, d.device),
                                         *grid[d.device], personalisation=choice))
    return result


def current_versions(registry: ModelRegistry, devices: list[str]) -> dict[str, Current]:
    """Each device's current version, as a ``TrainingJob`` carries it."""
    out = {}
    for device in devices:
        found = registry.current(device, TASK)
        if found is not None:
            out[device] = Current(found.metadata, found.weights, found.version)
    return out


def register_candidates(registry: ModelRegistry, result: TrainingResult, *, keep: int = 0
                        ) -> list[tuple[Candidate, int]]:
    """Record every candidate, promoted or rejected (with the guard's reason), as the next
    version of its device; ``keep``: the model-version retention (``training.keep_versions``).
    Returns (candidate, version number) pairs."""
    out = []
    for candidate in result.candidates:
        version = registry.register(
            candidate.device, TASK, candidate.weights, candidate.metadata,
            parent_version=registry.latest_version(candidate.device, TASK),
            status=PROMOTED if candidate.promoted else REJECTED,
            reason=None if candidate.promoted else candidate.reason, keep=keep)
        out.append((candidate, version))
    return out



def run_pipeline(job: TrainingJob, registry_path: str | Path, *,
                 run: Callable[[Callable[[TrainingJob], TrainingResult], TrainingJob],
                               TrainingResult] | None = None,
                 keep: int = 0) -> tuple[TrainingResult, list[tuple[Candidate, int]]]:
    """``train_candidates`` (through ``run``, e.g. a worker's ``call``; in this process
    without one) then ``register_candidates``."""
    result = train_candidates(job) if run is None else run(train_candidates, job)
    with ModelRegistry(registry_path) as registry:
        return result, register_candidates(registry, result, keep=keep)
