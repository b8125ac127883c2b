"""The gateway as one process: ingest, API, training scheduler and peer loop.

``GatewayService`` owns the parts' lifecycle. Start order: store schema, ingest
(so readings are acknowledged as early as possible), the clock (time for boards
without NTP, gateway/clock.py), API, training scheduler,
peer loop. Stop order on SIGTERM/SIGINT: ask every part to stop, let ingest stop
acknowledging and commit what it holds first, then join the rest, all inside
one deadline (5 s by default) so systemd never has to SIGKILL us.

Parts that belong to other packages are imported only when enabled, so a
deployment without training or peering never loads numpy models or IPFS code.
"""

from __future__ import annotations

import contextlib
import enum
import gc
import importlib
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from gateway.config import GatewayConfig

if TYPE_CHECKING:  # pragma: no cover
    from gateway.api.context import ServiceContext

log = logging.getLogger("learnae.service")

STOP_DEADLINE_S = 5.0


class ServiceError(RuntimeError):
    """The service cannot start; the message says what to fix."""


class State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


class Part(Protocol):
    """What the service needs from each thing it runs."""

    def start(self) -> None: ...

    def stop(self, timeout: float = 5.0) -> None: ...


def _import(module: str, name: str, what: str) -> Any:
    """``module.name``, or a ServiceError saying which part of the gateway is missing."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
            raise ServiceError(
                f"{what} is not available: module {module!r} is not installed "
                f"in this checkout ({exc})"
            ) from exc
        raise
    try:
        return getattr(mod, name)
    except AttributeError:
        raise ServiceError(
            f"{what} is not available: {module}.{name} does not exist in this checkout"
        ) from None


def ensure_token(config: GatewayConfig) -> str:
    """The API bearer token: ``api.token``, else ``api.token_file``, else a file
    created on first start as ``<data_dir>/api-token`` with mode 0600."""
    if config.api.token:
        return config.api.token
    path = config.api.token_file
    if path is not None:
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ServiceError(
                f"api.token_file = {str(path)!r} cannot be read: {exc.strerror}"
            ) from exc
        if not token:
            raise ServiceError(f"api.token_file = {str(path)!r} is empty")
        return token
    path = token_path(config)
    if path.exists():
        token = path.read_text(encoding="utf-8").strip()
        if token:
            return token
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    os.chmod(path, 0o600)
    log.info("created API token file %s (mode 0600)", path)
    return token


def token_path(config: GatewayConfig) -> Path:
    return config.api.token_file or config.gateway.data_dir / "api-token"


def sd_notify(message: str) -> None:
    """Tell systemd (Type=notify) about our state; a no-op outside systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(message.encode())


class ApiServer:
    """uvicorn in a thread, on a socket we bind ourselves so errors name the setting."""

    def __init__(self, app: Any, host: str, port: int,
                 on_stop: Callable[[], None] | None = None) -> None:
        import uvicorn

        self._on_stop = on_stop
        # IPPROTO_TCP named explicitly: asyncio turns Nagle's algorithm off (TCP_NODELAY)
        # only on sockets whose proto is IPPROTO_TCP, and accepted sockets inherit the
        # listener's; with proto 0 a response written as head + body waited for the
        # client's delayed ACK (about 40 ms per request on Linux)
        self._sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET,
                                   socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((host, port))
        except OSError as exc:
            self._sock.close()
            raise ServiceError(
                f"api.host = {host!r}, api.port = {port}: cannot listen ({exc.strerror})"
            ) from exc
        self._sock.listen(128)
        self.host = host
        self.port = int(self._sock.getsockname()[1])
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            # httptools when it is installed (about 2.5 times the requests/s of h11 on the
            # device list, docs/benchmarks.md "API"), else h11
            http="auto",
            lifespan="off",
            timeout_graceful_shutdown=1,
            timeout_keep_alive=5,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="api", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _serve(self) -> None:
        self._server.run(sockets=[self._sock])

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop(0.5)  # the service never lists a part that failed: release it here
                raise ServiceError(f"the API server did not start on {self.url}")
            time.sleep(0.01)

    def request_stop(self) -> None:
        self._server.should_exit = True

    def stop(self, timeout: float = 5.0) -> None:
        self.request_stop()
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(0.5)
        with contextlib.suppress(OSError):
            self._sock.close()
        if self._on_stop is not None:
            self._on_stop()


class ModelPusher:
    """Publish a device's new edge model (LEM1) retained on ``<prefix>/<device>/model``.

    Only to devices that opted in: firmware that can run the edge model reports a
    ``"model"`` field in its status document (the CRC of the model it runs, or null
    before the first one); ``api.push_model = "all"`` pushes to every device.
    """

    def __init__(self, config: GatewayConfig, publish: Callable[[str, bytes], None], *,
                 registry: Any = None) -> None:
        from prometheus_client import REGISTRY, Counter

        self.config = config
        self._publish = publish
        self.pushes = Counter("learnae_model_pushes", "Edge models offered to devices, by result",
                              ["result"], registry=REGISTRY if registry is None else registry)

    def opted_in(self, device: str) -> bool:
        if self.config.api.push_model == "all":
            return True
        from gateway.store import Store

        with Store.open(self.config.db_path, readonly=True) as store:
            info = store.device(device)
        return info is not None and "model" in info.status

    def push(self, device: str, version: int) -> bool:
        try:
            if not self.opted_in(device):
                self.pushes.labels("not_opted_in").inc()
                return False
            from gateway.api.sources import export_model
            from gateway.learning.registry import ModelRegistry
            from shared.topics import topic

            with ModelRegistry(self.config.db_path) as registry:
                found = registry.get(version)
                if found.status != "promoted":  # the board keeps the model it has
                    self.pushes.labels("not_promoted").inc()
                    return False
                data = export_model(found, "edge")
            self._publish(topic(self.config.mqtt.topic_prefix, device, "model"), data)
        except Exception:
            self.pushes.labels("failed").inc()
            log.exception("pushing model version %s to %s failed", version, device)
            return False
        self.pushes.labels("published").inc()
        log.info("pushed model version %d to %s (%d bytes)", version, device, len(data))
        return True


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
        self._started: list[tuple[str, Any]] = []

    # -- lifecycle -------------------------------------------------------
    def start(self) -> None:
        if self.state is not State.NEW:
            raise ServiceError(f"service cannot start from state {self.state.value!r}")
        config = self.config
        data_dir = config.gateway.data_dir
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
        config = self.config
        store_cls = _import("gateway.store", "Store", "the store")
        try:
            store = store_cls.open(config.db_path, synchronous=config.store.synchronous)
        except Exception as exc:
            raise ServiceError(f"store {str(config.db_path)!r}: {exc}") from exc
        store.close()  # creates or migrates the schema before anyone reads it

        ingestor_cls = _import("gateway.ingest", "Ingestor", "ingest")
        self.ingestor = ingestor_cls(config, config.db_path, registry=self.registry)
        self._start("ingest", self.ingestor)
        log.info(
            "ingest: %s:%d prefix %r", config.mqtt.host, config.mqtt.port, config.mqtt.topic_prefix
        )
        # boards without NTP take their time from the gateway (gateway/clock.py)
        clock_cls = _import("gateway.clock", "GatewayClock", "the clock")
        self._start("clock", clock_cls(config.mqtt, client_id=f"learnae-clock-{config.gateway.id}",
                                       registry=self.registry))

        if config.api.push_model != "off":
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
            from gateway.anomaly_monitor import AnomalyMonitor

            self._start("anomaly", AnomalyMonitor(config, registry=self.registry))
        if config.homeassistant.enabled:
            from gateway.homeassistant import HomeAssistantBridge

            self.homeassistant = HomeAssistantBridge(
                config, self.ingestor.publish_retained, registry=self.registry
            )
            self._start("homeassistant", self.homeassistant)

        if config.api.enabled:
            from gateway.api.app import create_app

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

    def _make_trainer(self) -> Any:
        """The learning package's scheduler, fed from a read-only store connection."""
        scheduler_cls = _import("gateway.learning.scheduler", "TrainingScheduler", "training")
        from gateway.api.context import StoreReader

        reader = StoreReader(self.config.db_path)
        max_readings = self.config.training.max_readings or None

        def list_devices() -> list[str]:
            return [d.id for d in reader.get().devices()]

        def load_series(device: str) -> tuple[Any, Any, list[str]] | None:
            series = reader.get().read_series(device, limit=max_readings)
            return (series.ts, series.values, series.channels) if len(series) else None

        return scheduler_cls(
            list_devices=list_devices,
            load_series=load_series,
            registry_path=self.config.db_path,
            settings=self.config.training,
            on_result=self._on_training_result,
            metrics_registry=self.registry,
        )

    def _on_training_result(self, outcome: Any) -> None:
        """After a round: push the new edge model to the device if it opted in."""
        if getattr(outcome, "status", None) != "trained":
            return
        if self.model_pusher is not None:
            self.model_pusher.push(outcome.device, outcome.version)

    def _make_peer(self) -> Any:
        """The LEARNAE round loop (gateway.peer) fed by this gateway's learner."""
        _import("gateway.peer", "build_peer_node", "peering")
        from gateway.api.context import StoreReader
        from gateway.collaboration import GatewayTrainer, PeerPart, PeerView

        reader = StoreReader(self.config.db_path)
        max_readings = self.config.training.max_readings or None

        def load() -> list[tuple[str, Any]]:
            store = reader.get()
            return [(d.id, store.read_series(d.id, limit=max_readings))
                    for d in store.devices()]

        def registered(device: str, version: int, metrics: dict[str, float]) -> None:
            if self.model_pusher is not None:
                self.model_pusher.push(device, version)

        trainer = GatewayTrainer(self.config, load, on_registered=registered)
        part = PeerPart(self.config, trainer, registry=self.registry)
        self.peer_source = PeerView(part)
        return part

    def _start(self, name: str, part: Any) -> None:
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
