"""How the service joins its learner to the LEARNAE round loop (gateway.peer).

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

``PeerPart`` starts the node only once there is something to train on, and
``PeerView`` turns the node's log views into the API's peers and rounds.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import logging
import multiprocessing
import os
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from gateway.config import GatewayConfig
from gateway.system.memory import release_free_memory

log = logging.getLogger("learnae.collaboration")


class NothingToTrain(RuntimeError):
    """No local device has enough readings for a round yet."""


def _lower_priority(increment: int) -> None:
    if increment > 0:
        try:
            os.nice(increment)
        except OSError:
            log.warning("could not lower training priority by %d", increment)


def _train_devices(series: list[tuple[str, np.ndarray, np.ndarray, list[str]]],
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
        result = self._pool.submit(_train_devices, series, self.settings(),
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


class PeerPart:
    """Starts the peer node once local data exists; stops it within the service's deadline."""

    def __init__(self, config: GatewayConfig, trainer: GatewayTrainer, *,
                 registry: Any = None, poll_s: float = 2.0) -> None:
        self.config = config
        self.trainer = trainer
        self.registry = registry
        if trainer.promotions is None:
            from prometheus_client import REGISTRY

            from gateway.learning.promotion import promotion_counter

            trainer.promotions = promotion_counter(registry if registry is not None else REGISTRY)
        self.poll_s = poll_s
        self.node: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        from gateway.peer.identity import Identity

        # the peer id exists from the first start, before any round
        self.peer_id = Identity.load_or_create(self.config.gateway.data_dir).peer_id
        self._thread = threading.Thread(target=self._wait_then_run, name="peer-start",
                                        daemon=True)
        self._thread.start()

    def _wait_then_run(self) -> None:
        from gateway.peer import build_peer_node

        settings = self.config.training
        enough = settings.min_windows + settings.window + 1
        while not self._stop.is_set():
            try:
                if any(len(ts) >= enough for _, ts, _, _ in self.trainer.local_series()):
                    break
            except NothingToTrain:
                pass
            except Exception:
                log.exception("peer: reading local data failed")
            self._stop.wait(self.poll_s)
        with self._lock:
            if self._stop.is_set():
                return
            self.node = build_peer_node(self.config, self.trainer, registry=self.registry)
            self.node.start()
            log.info("peer %s: round loop started (session %r, channels %s)",
                     self.node.peer_id, self.config.peer.session, self.trainer.channels)

    def request_stop(self) -> None:
        self._stop.set()
        node = self.node
        if node is not None:
            node.request_stop()  # a round in progress ends at its next check

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.trainer.close()  # a training step in progress is abandoned, not waited for
        with self._lock:
            node = self.node
        if node is not None:
            node.stop(timeout=max(0.1, timeout - 0.2))
        if self._thread is not None:
            self._thread.join(0.2)


class PeerView:
    """The API's PeerSource over a PeerPart: own rounds plus verified entries of others."""

    def __init__(self, part: PeerPart) -> None:
        self.part = part

    def self_id(self) -> str:
        return str(self.part.peer_id)

    def store_status(self) -> dict[str, Any] | None:
        """The content store's disk use against ``peer.max_store_bytes`` (None before a round)."""
        node = self.part.node
        retention = None if node is None else node.retention
        if retention is None or (retention.gc_runs == 0 and retention.bytes == 0):
            return None
        return dict(retention.status().as_dict())

    def _records(self) -> list[Any]:
        node = self.part.node
        return [] if node is None else list(node.directory.records.values())

    def peers(self) -> list[dict[str, Any]]:
        node = self.part.node
        own: dict[str, Any] = {"peer_id": self.self_id(), "is_self": True}
        if node is not None and node.history:
            last = node.rounds(1)[-1]
            own.update(last_round=last.round, last_seen=last.time, samples=last.samples,
                       metrics=dict(last.metrics))
        out = [own]
        for rec in sorted(self._records(), key=lambda r: r.peer_id):
            entry = rec.head_entry
            item: dict[str, Any] = {"peer_id": rec.peer_id, "is_self": False,
                                    "last_seen": rec.last_seen or None,
                                    "claimed_round": rec.claimed_round
                                    if rec.claimed_round >= 0 else None,
                                    "rejected": dict(rec.rejected)}
            if entry is not None:
                item.update(last_round=entry.round, samples=entry.samples,
                            metrics=dict(entry.metrics))
            out.append(item)
        return out

    def ledger(self, limit: int) -> dict[str, Any] | None:
        """What the node's ledger link holds (for ``GET /api/ledger``); None before it runs."""
        node = self.part.node
        if node is None:
            return None
        link, own = node.ledger, self.self_id()

        def anchored(a: Any) -> dict[str, Any]:
            return {"peer_id": a.peer, "round": a.round, "entry_cid": a.entry_cid, "tx": a.tx,
                    "block": a.position[0], "log_index": a.position[1], "time": a.time,
                    "sender": a.sender, "is_self": a.peer == own}

        return {
            "kind": link.ledger.kind, "enabled": link.active, "transport": link.every_round,
            "anchor_every": link.anchor_every,
            "items": [anchored(a) for a in link.anchored_entries(limit)],
            "pending": len(link.outbox), "rejected": dict(link.rejected),
            "forked_peers": sorted(link.forked),
            "evidence": [{"peer_id": e.peer, "session": e.session, "round": e.round,
                          "entries": [anchored(e.first), anchored(e.second)]}
                         for e in link.fork_evidence()],
        }

    def rounds(self, limit: int) -> list[dict[str, Any]]:
        node = self.part.node
        rows: list[dict[str, Any]] = []
        anchored: set[str] = set()
        if node is not None:
            anchored = {a.entry_cid for a in node.ledger.anchored_entries(10_000)}
            for info in node.rounds(limit):
                rows.append({"peer_id": self.self_id(), "round": info.round, "time": info.time,
                             "samples": info.samples, "metrics": dict(info.metrics),
                             "weights_cid": info.weights_cid, "entry_cid": info.entry_cid,
                             "parents": list(info.parents),
                             "fused_peers": list(info.fused_peers),
                             "anchored": info.entry_cid in anchored})
        for rec in self._records():
            for cid, entry in list(rec.chain.items()):
                rows.append({"peer_id": entry.peer, "round": entry.round, "time": entry.time,
                             "samples": entry.samples, "metrics": dict(entry.metrics),
                             "weights_cid": entry.weights, "entry_cid": cid,
                             "parents": list(entry.parents), "anchored": cid in anchored})
        rows.sort(key=lambda r: (r["time"] or 0.0, r["round"]))
        return rows[-limit:]
