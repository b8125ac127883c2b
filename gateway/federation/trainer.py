"""The peer layer's ``LocalTrainer`` over this gateway's store and model registry.

The peer layer asks a ``LocalTrainer`` for one training step per round and
never sees readings. ``GatewayTrainer`` answers from the store: it continues
training the shared forecaster (weights fused from peers) on each local
device's series, in a separate niced process so ingest never waits on it.
Each device's result is registered in the model registry like any other
version, through the promotion guard (so the API serves it and opted-in boards
receive it only if it beats persistence and the device's current version). One
network is trained per round on the windows of all local devices at once (each
with its own standardization), then personalised per device (the better of it
and a short local fine-tune); the shared weights go back to the peer loop.
Peers agree on the network shape because they share the session's channel list
(the channel set most local devices report; the demo's gateways all replay the
same AirQuality columns) and the training settings; with boards of mixed clocks,
set ``training.calendar`` explicitly so every peer has the same inputs.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import logging
import multiprocessing
import os
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from gateway.config import GatewayConfig
from gateway.errors import NothingToTrain
from gateway.runtime.memory import release_free_memory

log = logging.getLogger("learnae.federation")


def _lower_priority(increment: int) -> None:
    if increment > 0:
        try:
            os.nice(increment)
        except OSError:
            log.warning("could not lower training priority by %d", increment)


def train_devices(series: list[tuple[str, np.ndarray, np.ndarray, list[str]]],
                   settings: Any, start: dict[str, np.ndarray],
                   current: dict[str, tuple[dict[str, Any], dict[str, np.ndarray], int]] | None
                   = None) -> dict[str, Any]:
    """Worker process: one shared training run on every device's windows, then per device
    the better of the shared weights and a short fine-tune, judged by the promotion guard
    against persistence and the device's current version (``current``), with the
    detector's threshold calibrated to the false-alarm budget on the device's series."""
    from gateway.learning.calibration import calibrated_metadata
    from gateway.learning.dataset import SkipTraining
    from gateway.learning.federated import personalise, prepare_devices, spec_for, train_shared
    from gateway.learning.forecast import ForecastModel, finish_model, train_config
    from gateway.learning.mlp import check_weights
    from gateway.learning.promotion import judge
    from gateway.learning.regular import regular_series

    # irregular readings on the grid, short gaps interpolated, so that they train
    series = [(device, *regular_series(ts, values, settings.period_s, settings.anomaly_max_fill),
               channels) for device, ts, values, channels in series]
    devices, skipped, comp = prepare_devices(series, settings)
    if not devices or comp is None:
        return {"weights": start, "models": [], "skipped": skipped}
    spec = spec_for(settings, comp)
    check_weights(spec, start)
    try:
        shared = train_shared(spec, start, devices, train_config(settings))
    except SkipTraining as exc:
        return {"weights": start, "models": [],
                "skipped": {**skipped, **{d.device: exc.detail for d in devices}}}
    raw = {device: (ts, values) for device, ts, values, _ in series}
    models = []
    for d in devices:
        try:
            weights, choice = personalise(spec, shared, d, settings)
            model = finish_model(spec, weights, d.ds, comp, settings, ridge=d.ridge)
        except SkipTraining as exc:
            skipped[d.device] = exc.detail
            continue
        prev = (current or {}).get(d.device)
        prev_model = ForecastModel.from_metadata(prev[0], prev[1]) if prev else None
        decision = judge(model, prev_model, *raw[d.device], test_fraction=settings.test_fraction,
                         current_version=prev[2] if prev else None)
        meta = calibrated_metadata(model, *raw[d.device], settings)
        meta["personalisation"] = choice
        meta["promotion"] = {"promoted": decision.promoted, "result": decision.code,
                             "reason": decision.reason, "figures": decision.figures}
        models.append((d.device, meta, model.weights))
    return {"weights": shared, "models": models, "skipped": skipped}


class GatewayTrainer:
    """The peer layer's LocalTrainer over this gateway's store and model registry."""

    def __init__(self, config: GatewayConfig, load: Callable[[], list[tuple[str, Any]]], *,
                 on_registered: Callable[[str, int, dict[str, float]], None] | None = None
                 ) -> None:
        self.config = config
        self._load = load  # -> [(device, Series)]
        self._on_registered = on_registered
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._closed = False  # a round still running at shutdown must not start a new pool
        self.channels: list[str] | None = None
        self.promotions: Any = None  # learnae_model_promotions, set by the service
        self._calendar: bool | None = None

    # -- data --------------------------------------------------------------
    def local_series(self) -> list[tuple[str, np.ndarray, np.ndarray, list[str]]]:
        """Devices reporting the session's channel set, with their series."""
        loaded = [(d, s) for d, s in self._load() if len(s)]
        if not loaded:
            raise NothingToTrain("no device has readings yet")
        if self.channels is None:
            counts = Counter(tuple(s.channels) for _, s in loaded)
            best = max(counts.values())
            self.channels = list(sorted(k for k, v in counts.items() if v == best)[0])
        return [(d, s.ts, s.values, list(s.channels)) for d, s in loaded
                if list(s.channels) == self.channels]

    def settings(self) -> Any:
        """The training settings with ``calendar`` fixed at the first look at the data, so
        the network keeps its shape for the whole session (a board without a clock joining
        later must not change the inputs under the peers' feet)."""
        import dataclasses

        from gateway.learning.federated import shared_computation

        if self._calendar is None:
            series = self.local_series()
            assert self.channels is not None
            comp = shared_computation(self.config.training, len(self.channels),
                                      [ts for _, ts, _, _ in series])
            self._calendar = comp.calendar
        return dataclasses.replace(self.config.training,
                                   calendar="on" if self._calendar else "off")

    def spec(self) -> Any:
        from gateway.learning.federated import shared_computation, spec_for

        settings = self.settings()
        assert self.channels is not None
        return spec_for(settings, shared_computation(settings, len(self.channels), []))

    # -- LocalTrainer --------------------------------------------------------
    def initial_weights(self) -> dict[str, np.ndarray]:
        """The same start for every peer of a session: seeded from the session name
        (persistence exactly: the output layer and linear path start at zero)."""
        from gateway.learning.forecast import init_forecaster

        seed = int.from_bytes(hashlib.sha256(self.config.peer.session.encode()).digest()[:4],
                              "little")
        return init_forecaster(self.spec(), seed)

    def train(self, weights: dict[str, np.ndarray]) -> Any:
        from gateway.learning.registry import ModelRegistry
        from gateway.peer.trainer import TrainOutcome

        series = self.local_series()
        if self._closed:
            raise RuntimeError("the trainer is closed: no training after shutdown")
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                initializer=_lower_priority, initargs=(self.config.training.nice,))
        from gateway.learning.registry import ModelRegistry as _Registry

        current = {}
        with _Registry(self.config.db_path) as registry:
            for device, *_ in series:
                found = registry.current(device)
                if found is not None:
                    current[device] = (found.metadata, found.weights, found.version)
        result = self._pool.submit(train_devices, series, self.settings(),
                                   {k: np.asarray(v, np.float32) for k, v in weights.items()},
                                   current).result()
        if not result["models"]:
            raise NothingToTrain(f"every device was skipped: {result['skipped']}")
        samples = 0
        weighted: dict[str, float] = {}
        with ModelRegistry(self.config.db_path) as registry:
            for device, meta, model_weights in result["models"]:
                promoted = bool(meta["promotion"]["promoted"])
                version = registry.register(
                    device, "forecast", model_weights, meta,
                    parent_version=registry.latest_version(device),
                    status="promoted" if promoted else "rejected",
                    reason=None if promoted else meta["promotion"]["reason"],
                    keep=self.config.training.keep_versions)
                if self.promotions is not None:
                    self.promotions.labels(meta["promotion"]["result"]).inc()
                n = int(meta.get("samples", 0))
                samples += n
                for key in ("test_mse", "test_mae", "train_mse"):
                    if key in meta["metrics"]:
                        weighted[key] = weighted.get(key, 0.0) + n * float(meta["metrics"][key])
                if self._on_registered is not None and promoted:
                    self._on_registered(device, version, dict(meta["metrics"]))
        metrics = {k: v / max(samples, 1) for k, v in weighted.items()}
        if "test_mse" in metrics:
            metrics["val_loss"] = metrics["test_mse"]
        del series, current, result["models"]
        release_free_memory()  # the round's series and models, freed: back to the system
        return TrainOutcome(weights=result["weights"], samples=samples, metrics=metrics)

    def close(self) -> None:
        self._closed = True
        if self._pool is not None:
            for proc in list(getattr(self._pool, "_processes", {}).values()):
                proc.terminate()
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
