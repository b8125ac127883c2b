"""The gateway as one process: the composition root.

``GatewayService`` builds the parts that other packages define and runs them. Start
order: the store (creates or migrates the schema), ingest (so readings are acknowledged
as early as possible), the clock (time for boards without NTP), the model pusher, then
the peer loop (which trains each round) or the training scheduler, the anomaly detector,
Home Assistant, and last the API (so it never answers for a part that is not there).
Stop order on SIGTERM/SIGINT: ask every part to stop, let ingest stop acknowledging and
commit what it holds first, then stop the rest in reverse start order, all inside one
deadline (5 s by default) so systemd never has to SIGKILL us.

Parts are imported only when enabled, so a deployment without training or peering
never loads numpy models or IPFS code.
"""

from __future__ import annotations

import contextlib
import enum
import gc
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.config import GatewayConfig
from gateway.errors import ServiceError
from gateway.runtime.systemd import sd_notify

if TYPE_CHECKING:  # pragma: no cover
    from gateway.api.context import ServiceContext, StoreReader
    from gateway.api.server import ApiServer
    from gateway.runtime.parts import Part

__all__ = ["GatewayService", "ServiceError", "State"]

log = logging.getLogger("learnae.service")

STOP_DEADLINE_S = 5.0


class State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


class GatewayService:
    """Compose the gateway's parts and run them until asked to stop."""

    def __init__(self, config: GatewayConfig, *, registry: Any = None) -> None:
        self.config = config
        self.registry = registry
        self.state = State.NEW
        self.ingestor: Any = None
        self.trainer: Any = None
        self.peer: Any = None
        self.homeassistant: Any = None
        self.model_pusher: Any = None
        self.peer_source: Any = None
        self.api: ApiServer | None = None
        self.token: str | None = None
        self.started_at: float | None = None
        self._stop = threading.Event()
        self._started: list[tuple[str, Part]] = []

    # -- lifecycle -------------------------------------------------------
    def start(self) -> None:
        if self.state is not State.NEW:
            raise ServiceError(f"service cannot start from state {self.state.value!r}")
        data_dir = self.config.gateway.data_dir
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ServiceError(
                f"gateway.data_dir = {str(data_dir)!r} cannot be created: {exc.strerror}"
            ) from exc
        if not os.access(data_dir, os.W_OK):
            raise ServiceError(f"gateway.data_dir = {str(data_dir)!r} is not writable")
        self.started_at = time.time()
        try:
            self._start_parts()
        except BaseException:
            self.stop()
            raise
        self.state = State.RUNNING
        # Everything allocated so far lives as long as the process: keep it out of
        # the collector's way (shorter pauses while serving and ingesting).
        gc.collect()
        gc.freeze()
        self._write_state_file()
        sd_notify("READY=1\nSTATUS=running")

    def _start_parts(self) -> None:
        from gateway.ingest import Ingestor
        from gateway.integrations.clock import GatewayClock
        from gateway.store import Store

        config = self.config
        try:
            Store.open(config.db_path, synchronous=config.store.synchronous).close()
        except Exception as exc:  # the schema is created or migrated before anyone reads it
            raise ServiceError(f"store {str(config.db_path)!r}: {exc}") from exc

        self.ingestor = Ingestor(config, config.db_path, registry=self.registry)
        self._start("ingest", self.ingestor)
        log.info(
            "ingest: %s:%d prefix %r", config.mqtt.host, config.mqtt.port, config.mqtt.topic_prefix
        )
        self._start("clock",
                    GatewayClock(config.mqtt, client_id=f"learnae-clock-{config.gateway.id}",
                                          registry=self.registry))
        if config.api.push_model != "off":
            from gateway.integrations.model_push import ModelPusher

            self.model_pusher = ModelPusher(config, self.ingestor.publish_retained,
                                            registry=self.registry)
        if config.peer.enabled:
            # LEARNAE rounds do the training: each round continues the fused model
            self.peer = self._make_peer()
            self._start("peer", self.peer)
        elif config.training.enabled:
            self.trainer = self._make_trainer()
            self._start("training", self.trainer)
        if config.peer.enabled or config.training.enabled:
            from gateway.learning.monitor import AnomalyMonitor

            self._start("anomaly", AnomalyMonitor(config, registry=self.registry))
        if config.homeassistant.enabled:
            from gateway.integrations.homeassistant import HomeAssistantBridge

            self.homeassistant = HomeAssistantBridge(
                config, self.ingestor.publish_retained, registry=self.registry
            )
            self._start("homeassistant", self.homeassistant)
        if config.api.enabled:
            from gateway.api.app import create_app
            from gateway.api.server import ApiServer
            from gateway.api.token import ensure_token

            self.token = ensure_token(config)
            context = self.api_context()
            self.api = ApiServer(create_app(context), config.api.host, config.api.port,
                                 on_stop=context.store.close)
            self._start("api", self.api)
            log.info("api: %s (dashboard at /, OpenAPI at /openapi.json)", self.api.url)

    def api_context(self) -> ServiceContext:
        """The API's view of this service (``gateway.api.context.ServiceContext``).

        The service hands the API its parts; the API never imports the service.
        """
        from gateway.api.context import ServiceContext, StoreReader
        from gateway.api.sources import model_source_for

        assert self.token is not None
        return ServiceContext(
            config=self.config,
            token=self.token,
            store=StoreReader(self.config.db_path),
            publisher=self.ingestor,
            models=model_source_for(self.config.db_path),
            peers=self.peer_source,
            registry=self.registry,
            parts=self.parts,
            ingest_stats=getattr(self.ingestor, "stats", None),
            started_at=self.started_at or time.time(),
        )

    def _reader(self) -> StoreReader:
        from gateway.api.context import StoreReader

        return StoreReader(self.config.db_path)

    def _make_trainer(self) -> Part:
        """The training scheduler, fed from a read-only store connection."""
        from gateway.learning.scheduler import TrainingScheduler

        reader = self._reader()
        max_readings = self.config.training.max_readings or None

        def list_devices() -> list[str]:
            return [d.id for d in reader.get().devices()]

        def load_series(device: str) -> tuple[Any, Any, list[str]] | None:
            series = reader.get().read_series(device, limit=max_readings)
            return (series.ts, series.values, series.channels) if len(series) else None

        def pushed(outcome: Any) -> None:  # a promoted version goes to the device's board
            if outcome.status == "trained" and self.model_pusher is not None:
                self.model_pusher.push(outcome.device, outcome.version)

        return TrainingScheduler(list_devices=list_devices, load_series=load_series,
                                 registry_path=self.config.db_path,
                                 settings=self.config.training, on_result=pushed,
                                 metrics_registry=self.registry)

    def _make_peer(self) -> Part:
        """The LEARNAE round loop (gateway.peer) fed by this gateway's learner."""
        from gateway.federation import GatewayTrainer, PeerPart, PeerView

        reader = self._reader()
        max_readings = self.config.training.max_readings or None

        def load() -> list[tuple[str, Any]]:
            store = reader.get()
            return [(d.id, store.read_series(d.id, limit=max_readings))
                    for d in store.devices()]

        def pushed(device: str, version: int, metrics: dict[str, float]) -> None:
            if self.model_pusher is not None:
                self.model_pusher.push(device, version)

        trainer = GatewayTrainer(self.config, load, on_registered=pushed)
        part = PeerPart(self.config, trainer, registry=self.registry)
        self.peer_source = PeerView(part)
        return part

    def _start(self, name: str, part: Part) -> None:
        try:
            part.start()
        except ServiceError:
            raise
        except Exception as exc:
            raise ServiceError(f"{name} failed to start: {exc}") from exc
        self._started.append((name, part))

    def request_stop(self, *_: object) -> None:
        """Signal-safe: wake ``run_until_stopped``."""
        self._stop.set()

    def run_until_stopped(self, tick: Callable[[], None] | None = None) -> None:
        while not self._stop.wait(1.0):
            if tick is not None:
                tick()

    def stop(self, deadline_s: float = STOP_DEADLINE_S) -> None:
        """Stop every started part within ``deadline_s`` seconds, ingest first."""
        if self.state in (State.STOPPING, State.STOPPED):
            return
        self.state = State.STOPPING
        sd_notify("STOPPING=1")
        deadline = time.monotonic() + deadline_s - 0.3
        # Ask the parts that hold no readings to wind down while ingest commits.
        for name, part in self._started:
            if name != "ingest" and hasattr(part, "request_stop"):
                with contextlib.suppress(Exception):
                    part.request_stop()
        order = [p for p in self._started if p[0] == "ingest"]
        order += [p for p in reversed(self._started) if p[0] != "ingest"]
        for name, part in order:
            remaining = max(0.2, deadline - time.monotonic())
            budget = min(remaining, 3.0) if name == "ingest" else remaining
            try:
                part.stop(timeout=budget)
            except Exception:
                log.exception("%s: error while stopping", name)
        self._started.clear()
        with contextlib.suppress(OSError):
            self.state_file.unlink()
        self.state = State.STOPPED

    # -- information for the API and status -----------------------------
    @property
    def state_file(self) -> Path:
        return self.config.gateway.data_dir / "service.json"

    def _write_state_file(self) -> None:
        info = {
            "pid": os.getpid(),
            "gateway": self.config.gateway.id,
            "started_at": self.started_at,
            "api": self.api.url if self.api else None,
            "parts": [name for name, _ in self._started],
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(info) + "\n", encoding="utf-8")
        tmp.replace(self.state_file)

    def parts(self) -> list[str]:
        return [name for name, _ in self._started]
