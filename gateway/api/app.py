"""``create_app(context)``: the FastAPI application, one router per area."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from gateway.api.deps import ServiceContext
from gateway.api.routes import dashboard, devices, health, metrics, model, peers
from gateway.metrics import ApiMetrics

STATIC = Path(__file__).resolve().parent / "static"
VERSION = "0.1.0"


def create_app(context: ServiceContext) -> FastAPI:
    app = FastAPI(
        title="LEARNAE edge gateway",
        version=VERSION,
        description="Readings, devices, models and LEARNAE rounds of one gateway.",
        docs_url=None,  # the stock page loads Swagger UI from a CDN; /docs is served offline
        redoc_url=None,
    )
    app.state.context = context
    context.api_metrics = ApiMetrics(context.registry)
    context.api_metrics.context = context
    app.add_middleware(LimitsAndMetrics, context=context)
    for router in (health, devices, model, peers, metrics, dashboard):
        app.include_router(router.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


# Read-only lists every open dashboard polls: answered from a short-lived cache
# (``api.cache_ms``) in front of the app, as a reverse proxy's micro-cache would.
CACHEABLE = frozenset({"/api/devices", "/api/overview", "/api/peers", "/api/rounds",
                       "/api/models"})


class LimitsAndMetrics:
    """Pure ASGI middleware: refuse oversized bodies (413), micro-cache hot lists,
    count and time requests."""

    def __init__(self, app: Any, context: ServiceContext) -> None:
        self.app = app
        self.context = context
        self._cache: dict[tuple[str, bytes], tuple[float, int, list[Any], bytes]] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        metrics = self.context.api_metrics
        ttl = self.context.config.api.cache_ms / 1000.0
        key = (scope["path"], scope.get("query_string", b""))
        if ttl > 0 and scope["method"] == "GET" and key[0] in CACHEABLE:
            hit = self._cache.get(key)
            if hit is not None and time.monotonic() - hit[0] < ttl:
                await send({"type": "http.response.start", "status": hit[1], "headers": hit[2]})
                await send({"type": "http.response.body", "body": hit[3]})
                metrics.latency.labels(key[0]).observe(time.perf_counter() - start)
                metrics.requests.labels(key[0], "GET", str(hit[1])).inc()
                return
            await self._respond(scope, receive, send, start, cache_key=key)
            return
        await self._respond(scope, receive, send, start)

    async def _respond(self, scope: dict[str, Any], receive: Any, send: Any, start: float,
                       cache_key: tuple[str, bytes] | None = None) -> None:
        limit = self.context.config.api.max_body_bytes
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and (not value.isdigit() or int(value) > limit):
                await _send_json(send, 413, b'{"detail":"request body larger than %d bytes"}'
                                 % limit)
                return
        status_holder = [500]
        received = [0]
        captured: list[Any] = []

        async def counting_receive() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                received[0] += len(message.get("body", b""))
                if received[0] > limit:
                    raise _BodyTooLarge
            return message

        async def recording_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
            if cache_key is not None:
                captured.append(message)
            await send(message)

        try:
            await self.app(scope, counting_receive, recording_send)
        except _BodyTooLarge:
            status_holder[0] = 413
            await _send_json(send, 413, b'{"detail":"request body larger than %d bytes"}' % limit)
        finally:
            route = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            metrics = self.context.api_metrics
            metrics.latency.labels(label).observe(time.perf_counter() - start)
            metrics.requests.labels(label, scope.get("method", ""), str(status_holder[0])).inc()
        if (cache_key is not None and status_holder[0] == 200 and len(captured) == 2
                and not captured[1].get("more_body")):
            if len(self._cache) > 256:
                self._cache.clear()
            self._cache[cache_key] = (time.monotonic(), 200, captured[0]["headers"],
                                      captured[1]["body"])


class _BodyTooLarge(Exception):
    pass


async def _send_json(send: Any, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
