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

import hashlib
import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from gateway.config import GatewayConfig
from gateway.errors import NothingToTrain
from gateway.learning.pipeline import TrainingJob, current_versions, run_pipeline
from gateway.learning.registry import ModelRegistry
from gateway.runtime.memory import release_free_memory
from gateway.runtime.workers import WorkerProcess

__all__ = ["GatewayTrainer"]

log = logging.getLogger("learnae.federation")


class GatewayTrainer:
    """The peer layer's LocalTrainer over this gateway's store and model registry."""

    def __init__(self, config: GatewayConfig, load: Callable[[], list[tuple[str, Any]]], *,
                 on_registered: Callable[[str, int, dict[str, float]], None] | None = None
                 ) -> None:
        self.config = config
        self._load = load  # -> [(device, Series)]
        self._on_registered = on_registered
        # a round still running at shutdown must not start a new process: stop() is final
        self._worker = WorkerProcess(nice=config.training.nice, name="learnae-round")
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
        """One round's training step: the pipeline from the fused ``weights`` on every local
        device, each result registered; the shared weights and the sample-weighted metrics
        go back to the peer loop."""
        from gateway.peer.trainer import TrainOutcome

        series = self.local_series()
        if self._worker.stopped:
            raise RuntimeError("the trainer is closed: no training after shutdown")
        with ModelRegistry(self.config.db_path) as registry:
            current = current_versions(registry, [device for device, *_ in series])
        job = TrainingJob(series, self.settings(), current,
                          start={k: np.asarray(v, np.float32) for k, v in weights.items()})
        result, registered = run_pipeline(job, self.config.db_path, run=self._worker.call,
                                          keep=self.config.training.keep_versions)
        if not registered:
            skipped = {device: skip.detail for device, skip in result.skipped.items()}
            raise NothingToTrain(f"every device was skipped: {skipped}")
        samples = 0
        weighted: dict[str, float] = {}
        for candidate, version in registered:
            if self.promotions is not None:
                self.promotions.labels(candidate.result).inc()
            meta = candidate.metadata
            n = int(meta.get("samples", 0))
            samples += n
            for key in ("test_mse", "test_mae", "train_mse"):
                if key in meta["metrics"]:
                    weighted[key] = weighted.get(key, 0.0) + n * float(meta["metrics"][key])
            if self._on_registered is not None and candidate.promoted:
                self._on_registered(candidate.device, version, dict(meta["metrics"]))
        metrics = {k: v / max(samples, 1) for k, v in weighted.items()}
        if "test_mse" in metrics:
            metrics["val_loss"] = metrics["test_mse"]
        shared = result.shared
        assert shared is not None  # a round's job always has its start weights
        del series, current, result, registered
        release_free_memory()  # the round's series and models, freed: back to the system
        return TrainOutcome(weights=shared, samples=samples, metrics=metrics)

    def close(self) -> None:
        """A training step in progress is abandoned (its process ended), not waited for."""
        self._worker.stop()
