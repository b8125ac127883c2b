"""What the API needs from the gateway, declared on the API's side.

The service builds a ``ServiceContext`` from its running parts and hands it to
``create_app``; nothing in ``gateway.api`` imports ``gateway.service`` (a test
walks the imports), so the API can be built and tested without a service, and
the service depends on the API, never the other way round.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from gateway.config import GatewayConfig
from gateway.errors import ModelsUnavailable

if TYPE_CHECKING:  # pragma: no cover
    from prometheus_client import CollectorRegistry

__all__ = ["ModelSource", "ModelsUnavailable", "PeerSource", "Publisher", "ServiceContext",
           "StoreReader"]


class Publisher(Protocol):
    """Retained MQTT messages (the ingestor's own client)."""

    def publish_retained(self, topic: str, payload: bytes) -> None: ...


class ModelSource(Protocol):
    """The trained model as the API shows it (backed by the learning registry).

    Every method may raise ``ModelsUnavailable``.
    """

    def current(self, device: str | None = None) -> dict[str, Any] | None: ...

    def latest_per_device(self) -> list[dict[str, Any]]: ...

    def artifact(self, fmt: str, device: str | None = None) -> bytes | None: ...

    def history(self, limit: int) -> list[dict[str, Any]]: ...


class PeerSource(Protocol):
    """The LEARNAE round loop as the API shows it."""

    def self_id(self) -> str: ...

    def peers(self) -> list[dict[str, Any]]: ...

    def rounds(self, limit: int) -> list[dict[str, Any]]: ...


class StoreReader:
    """One read-only store connection per thread (SQLite connections are not shared).

    The API's worker threads come and go (anyio ends a worker idle for a while and starts
    a new one under load), so a connection is closed once its thread has ended: without
    that every retired worker's connection, its file handles and page cache, stayed open
    for the life of the service.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: list[tuple[threading.Thread, Any]] = []

    def get(self) -> Any:
        store = getattr(self._local, "store", None)
        if store is None:
            from gateway.store import Store

            store = Store.open(self.path, readonly=True)
            self._local.store = store
            with self._lock:
                ended = [s for t, s in self._opened if not t.is_alive()]
                self._opened = [(t, s) for t, s in self._opened if t.is_alive()]
                self._opened.append((threading.current_thread(), store))
            for old in ended:
                with contextlib.suppress(Exception):
                    old.close()
        return store

    def open_count(self) -> int:
        """Connections held now (at most one per live thread that has read)."""
        with self._lock:
            return len(self._opened)

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
        for _, store in opened:
            with contextlib.suppress(Exception):  # another thread's connection may refuse
                store.close()


@dataclass
class ServiceContext:
    """Everything a handler may touch: config, token, stores, ports and callbacks.

    Optional ports are None when their part is off (no ingest: 503 on publishing;
    no model registry: 404 "no model yet"; no peering: ``peers.enabled = false``).
    A new part the API shows is added here as one more optional field, filled in
    by the service (``GatewayService.api_context``).
    """

    config: GatewayConfig
    token: str
    store: StoreReader
    publisher: Publisher | None = None
    models: ModelSource | None = None
    peers: PeerSource | None = None
    registry: CollectorRegistry | None = None
    parts: Callable[[], list[str]] = list
    ingest_stats: Callable[[], dict[str, Any]] | None = None
    started_at: float = field(default_factory=time.time)
    api_metrics: Any = None  # set by create_app
