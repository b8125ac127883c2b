"""The response cache of the hot read-only lists, answered in front of FastAPI.

Every open dashboard polls ``/api/devices`` (and the overview, peers, rounds and
models lists). A fresh answer (at most ``api.cache_ms`` old) is sent as the
bytes and headers FastAPI produced for the same path and query string, before
any routing, dependency resolution or middleware runs: on a 2-core gateway that
is what lets 50 clients polling back to back stay under the latency goal
(docs/benchmarks.md, "API").

Only ``200`` answers complete in one body are stored, keyed on the path and the
raw query string, so ``?limit=0`` still reaches FastAPI and its 422. When an
entry is missing or stale, one request rebuilds it through the whole app while
the others asking for the same key wait for that answer instead of each running
the query (no stampede every ``cache_ms``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

# Read-only lists every open dashboard polls (a reverse proxy's micro-cache would
# hold the same ones).
CACHEABLE = frozenset({"/api/devices", "/api/overview", "/api/peers", "/api/rounds",
                       "/api/models"})
MAX_ENTRIES = 256  # distinct query strings kept; stale ones go first, then all

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


@dataclass(frozen=True)
class _Entry:
    stored_at: float  # time.monotonic()
    start: dict[str, Any]  # the http.response.start message, reused as is
    body: dict[str, Any]  # the http.response.body message, reused as is


class ResponseCache:
    """Fresh answers of the :data:`CACHEABLE` paths, one rebuild at a time per key.

    ``ttl_s`` is read through a callable so the value in force is the config's;
    ``0`` (or less) turns the cache off and every request reaches the app.
    ``observe(path, status, seconds)`` records the requests answered here (the
    ones that reach the app are counted by the app's own middleware).
    """

    def __init__(self, ttl_s: Callable[[], float],
                 observe: Callable[[str, int, float], None]) -> None:
        self._ttl_s = ttl_s
        self._observe = observe
        self._entries: dict[tuple[str, bytes], _Entry] = {}
        self._pending: dict[tuple[str, bytes], asyncio.Future[None]] = {}

    def handles(self, scope: dict[str, Any]) -> bool:
        return (scope["type"] == "http" and scope["method"] == "GET"
                and scope["path"] in CACHEABLE and self._ttl_s() > 0)

    async def serve(self, scope: dict[str, Any], receive: Any, send: Any, app: ASGIApp) -> None:
        """Answer from a fresh entry, or wait for the rebuild in progress, or rebuild."""
        start = time.perf_counter()
        key = (scope["path"], scope.get("query_string", b""))
        if await self._send_fresh(key, send, start):
            return
        pending = self._pending.get(key)
        if pending is not None:
            await asyncio.shield(pending)
            if await self._send_fresh(key, send, start):
                return
            # the rebuild gave no cacheable answer (e.g. 422, or the client went away):
            # this request gets its own answer from the app
            await app(scope, receive, send)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            await self._rebuild(key, scope, receive, send, app)
        finally:
            del self._pending[key]
            future.set_result(None)

    async def _send_fresh(self, key: tuple[str, bytes], send: Any, start: float) -> bool:
        entry = self._entries.get(key)
        if entry is None or time.monotonic() - entry.stored_at >= self._ttl_s():
            return False
        await send(entry.start)
        await send(entry.body)
        self._observe(key[0], entry.start["status"], time.perf_counter() - start)
        return True

    async def _rebuild(self, key: tuple[str, bytes], scope: dict[str, Any], receive: Any,
                       send: Any, app: ASGIApp) -> None:
        captured: list[dict[str, Any]] = []

        async def recording_send(message: dict[str, Any]) -> None:
            captured.append(message)
            await send(message)

        stored_at = time.monotonic()  # the answer is at least as fresh as its start
        await app(scope, receive, recording_send)
        if (len(captured) == 2 and captured[0]["type"] == "http.response.start"
                and captured[0]["status"] == 200 and captured[1]["type"] == "http.response.body"
                and not captured[1].get("more_body")):
            self._store(key, _Entry(
                stored_at,
                {"type": "http.response.start", "status": 200,
                 "headers": list(captured[0].get("headers", ()))},
                {"type": "http.response.body", "body": bytes(captured[1].get("body", b""))}))

    def _store(self, key: tuple[str, bytes], entry: _Entry) -> None:
        if key not in self._entries and len(self._entries) >= MAX_ENTRIES:
            ttl = self._ttl_s()
            now = time.monotonic()
            for old in [k for k, e in self._entries.items() if now - e.stored_at >= ttl]:
                del self._entries[old]
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
        self._entries[key] = entry
