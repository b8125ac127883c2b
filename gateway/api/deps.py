"""What handlers depend on, as named ``Annotated`` aliases.

The API never owns the gateway's parts; it sees them through small ports held
in a ``ServiceContext``: a read-only store per thread, a publisher for retained
messages (the ingestor's own MQTT client), and sources of models, peers and rounds.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gateway.config import GatewayConfig

if TYPE_CHECKING:  # pragma: no cover
    from prometheus_client import CollectorRegistry

    from gateway.service import GatewayService


class Publisher(Protocol):
    def publish_retained(self, topic: str, payload: bytes) -> None: ...


class ModelSource(Protocol):
    """The trained model as the API shows it (backed by the learning registry)."""

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
    """One read-only store connection per thread (SQLite connections are not shared)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: list[Any] = []

    def get(self) -> Any:
        store = getattr(self._local, "store", None)
        if store is None:
            from gateway.store import Store

            store = Store.open(self.path, readonly=True)
            self._local.store = store
            with self._lock:
                self._opened.append(store)
        return store

    def close(self) -> None:
        with self._lock:
            for store in self._opened:
                with contextlib.suppress(Exception):  # another thread's connection may refuse
                    store.close()
            self._opened.clear()


@dataclass
class ServiceContext:
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

    @classmethod
    def for_service(cls, service: GatewayService) -> ServiceContext:
        from gateway.api.sources import model_source_for, peer_source_for

        assert service.token is not None
        return cls(
            config=service.config,
            token=service.token,
            store=StoreReader(service.config.db_path),
            publisher=service.ingestor,
            models=model_source_for(service),
            peers=peer_source_for(service),
            registry=service.registry,
            parts=service.parts,
            ingest_stats=getattr(service.ingestor, "stats", None),
            started_at=service.started_at or time.time(),
        )


async def get_context(request: Request) -> ServiceContext:
    # async: FastAPI would run a plain function in its thread pool, for nothing
    context: ServiceContext = request.app.state.context
    return context


ContextDep = Annotated[ServiceContext, Depends(get_context)]

_bearer = HTTPBearer(auto_error=False, description="token from the gateway's api-token file")


def require_token(
    context: ContextDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """401 without a bearer token, 403 with a wrong one."""
    metrics = context.api_metrics
    if credentials is None or not credentials.credentials:
        if metrics:
            metrics.auth_failures.labels("missing").inc()
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="this endpoint needs `Authorization: Bearer <token>` (see api.token_file)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not secrets.compare_digest(credentials.credentials.encode(), context.token.encode()):
        if metrics:
            metrics.auth_failures.labels("wrong").inc()
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="the bearer token is not valid")


TokenDep = Annotated[None, Depends(require_token)]
