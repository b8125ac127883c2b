"""``create_app(context)``: the FastAPI application, one router per area."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from gateway import __version__
from gateway.api.cache import ResponseCache
from gateway.api.context import ModelsUnavailable, ServiceContext
from gateway.api.contract import complete_contract
from gateway.api.metrics import ApiMetrics
from gateway.api.routes import (
    anomalies,
    dashboard,
    devices,
    health,
    metrics,
    model,
    ota,
    peers,
    versions,
)
from gateway.api.routes import ledger as ledger_routes

__all__ = ["GatewayApp", "create_app"]

STATIC = Path(__file__).resolve().parent / "static"
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


class GatewayApp(FastAPI):
    """FastAPI with the hot lists' response cache (``gateway.api.cache``) in front.

    A fresh cached answer is sent before FastAPI's routing, dependencies and
    middleware; everything else (and every rebuild of an entry) runs the whole app.
    """

    response_cache: ResponseCache
    max_page: int = 1000

    def openapi(self) -> dict[str, Any]:
        """FastAPI's document with the answers every route can give (``gateway.api.contract``)."""
        if self.openapi_schema is None:
            self.openapi_schema = complete_contract(super().openapi(), max_page=self.max_page)
        return self.openapi_schema

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.response_cache.handles(scope):
            await self.response_cache.serve(scope, receive, send, super().__call__)
        else:
            await super().__call__(scope, receive, send)


async def _http_error(request: Request, exc: Exception) -> Response:
    """FastAPI's answer, except that a 405's ``Allow`` lists the methods of every route of
    the path (Starlette names only the first route's, wrong when GET and POST are two)."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        routes = request.app.router.routes
        allowed = [m for m in _METHODS
                   if any(r.matches({**request.scope, "method": m})[0] == Match.FULL
                          for r in routes)]
        if allowed:
            exc.headers = {**(exc.headers or {}), "Allow": ", ".join(allowed)}
    return await http_exception_handler(request, exc)


def create_app(context: ServiceContext) -> GatewayApp:
    app = GatewayApp(
        title="LEARNAE edge gateway",
        version=__version__,
        description="Readings, devices, models and LEARNAE rounds of one gateway.",
        docs_url=None,  # the stock page loads Swagger UI from a CDN; /docs is served offline
        redoc_url=None,
    )
    app.state.context = context
    app.max_page = context.config.api.max_page
    api_metrics = context.api_metrics = ApiMetrics(context.registry)
    api_metrics.context = context
    app.response_cache = ResponseCache(lambda: context.config.api.cache_ms / 1000.0,
                                       _CachedObserver(api_metrics))
    app.add_middleware(LimitsAndMetrics, context=context)
    app.add_exception_handler(ModelsUnavailable, _models_unavailable)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for router in (health, devices, anomalies, model, peers, metrics, dashboard, versions, ota):
        app.include_router(router.router)
    app.include_router(ledger_routes.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


async def _models_unavailable(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": f"model registry unavailable: {exc}"}, status_code=503)


class _CachedObserver:
    """Counts and times answers sent from the cache, under the same labels as the app's.

    The labelled children are looked up once per (path, status): ``labels()`` takes a
    lock and builds a key on every call, which shows at thousands of requests/s.
    """

    def __init__(self, api_metrics: ApiMetrics) -> None:
        self._metrics = api_metrics
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}

    def __call__(self, path: str, status: int, seconds: float) -> None:
        children = self._children.get((path, status))
        if children is None:
            children = self._children[(path, status)] = (
                self._metrics.latency.labels(path),
                self._metrics.requests.labels(path, "GET", str(status)))
        children[0].observe(seconds)
        children[1].inc()


class LimitsAndMetrics:
    """Pure ASGI middleware: refuse oversized bodies (413), count and time requests."""

    def __init__(self, app: Any, context: ServiceContext) -> None:
        self.app = app
        self.context = context

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        limit = self.context.config.api.max_body_bytes
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and (not value.isdigit() or int(value) > limit):
                await _send_json(send, 413, b'{"detail":"request body larger than %d bytes"}'
                                 % limit)
                return
        status_holder = [500]
        received = [0]

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
