"""The hot lists' response cache and the API server's sockets."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
from typing import Any

import httpx
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from gateway.api import ServiceContext, StoreReader, create_app
from gateway.api.cache import ResponseCache
from gateway.api.server import ApiServer


def _cached_app(api_config: Any, cache_ms: float) -> tuple[Any, ServiceContext]:
    config = dataclasses.replace(api_config,
                                 api=dataclasses.replace(api_config.api, cache_ms=cache_ms))
    context = ServiceContext(config=config, token="t", store=StoreReader(config.db_path),
                             registry=CollectorRegistry())
    return create_app(context), context


def test_a_cached_answer_is_the_uncached_one(api_config: Any, api_store: Any) -> None:
    """Same status, body and headers (but the date) with the cache on as with it off."""
    plain_app, plain_context = _cached_app(api_config, 0)
    cached_app, cached_context = _cached_app(api_config, 60_000)
    with TestClient(plain_app) as plain, TestClient(cached_app) as cached:
        for params in ({}, {"limit": 1, "offset": 1}):
            want = plain.get("/api/devices", params=params)
            for _ in range(2):  # the first fills the entry, the second is answered from it
                got = cached.get("/api/devices", params=params)
                assert got.status_code == want.status_code == 200
                assert got.content == want.content
                assert ({k: v for k, v in got.headers.items() if k != "date"}
                        == {k: v for k, v in want.headers.items() if k != "date"})
    plain_context.store.close()
    cached_context.store.close()


def test_rejections_are_never_cached(api_config: Any, api_store: Any) -> None:
    app, context = _cached_app(api_config, 60_000)
    with TestClient(app) as client:
        for _ in range(2):
            for params, msg in (({"limit": 0}, "Input should be greater than or equal to 1"),
                                ({"limit": 501}, "limit 501 exceeds api.max_page = 500"),
                                ({"offset": -1}, "Input should be greater than or equal to 0")):
                response = client.get("/api/devices", params=params)
                assert response.status_code == 422, params
                assert response.json()["detail"][0]["msg"] == msg
        assert client.get("/api/devices").json()["total"] == 2
    context.store.close()


def test_answers_from_the_cache_are_counted_under_the_route(api_config: Any,
                                                            api_store: Any) -> None:
    app, context = _cached_app(api_config, 60_000)
    with TestClient(app) as client:
        for _ in range(3):
            assert client.get("/api/devices").status_code == 200
        sample = context.registry.get_sample_value  # type: ignore[union-attr]
        assert sample("learnae_api_requests_total",
                      {"route": "/api/devices", "method": "GET", "status": "200"}) == 3
        assert sample("learnae_api_request_seconds_count", {"route": "/api/devices"}) == 3
    context.store.close()


class _SlowList:
    """An ASGI app answering a list after ``release`` is set, counting the calls."""

    def __init__(self, status: int = 200) -> None:
        self.calls = 0
        self.status = status
        self.release = asyncio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls += 1
        await self.release.wait()
        body = b'{"call":%d}' % self.calls
        await send({"type": "http.response.start", "status": self.status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


async def _get(cache: ResponseCache, app: Any, query: bytes = b"") -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/api/devices", "query_string": query}
    await cache.serve(scope, None, send, app)
    return sent[0]["status"], sent[1]["body"]


def test_one_rebuild_at_a_time_however_many_requests_wait() -> None:
    observed: list[tuple[str, int]] = []
    cache = ResponseCache(lambda: 60.0, lambda path, status, _: observed.append((path, status)))

    async def scenario() -> tuple[list[tuple[int, bytes]], int]:
        app = _SlowList()
        tasks = [asyncio.create_task(_get(cache, app)) for _ in range(20)]
        await asyncio.sleep(0)  # every request has arrived while the first one rebuilds
        app.release.set()
        answers = await asyncio.gather(*tasks)
        answers.append(await _get(cache, app))  # afterwards: still the same entry
        return answers, app.calls

    answers, calls = asyncio.run(scenario())
    assert calls == 1
    assert answers == [(200, b'{"call":1}')] * 21
    assert observed == [("/api/devices", 200)] * 20  # the rebuild is counted by the app


def test_waiters_of_an_uncacheable_answer_ask_the_app_themselves() -> None:
    cache = ResponseCache(lambda: 60.0, lambda *_: None)

    async def scenario() -> tuple[list[tuple[int, bytes]], int]:
        app = _SlowList(status=503)
        tasks = [asyncio.create_task(_get(cache, app, b"limit=5")) for _ in range(3)]
        await asyncio.sleep(0)
        app.release.set()
        return await asyncio.gather(*tasks), app.calls

    answers, calls = asyncio.run(scenario())
    assert calls == 3
    assert sorted(answers) == [(503, b'{"call":%d}' % n) for n in (1, 2, 3)]


def test_a_stale_entry_is_rebuilt_and_a_zero_ttl_reaches_the_app() -> None:
    ttl = [60.0]
    cache = ResponseCache(lambda: ttl[0], lambda *_: None)

    async def scenario() -> list[tuple[int, bytes]]:
        app = _SlowList()
        app.release.set()
        first = await _get(cache, app)
        ttl[0] = 1e-9  # every entry is now older than the ttl
        second = await _get(cache, app)
        return [first, second]

    assert asyncio.run(scenario()) == [(200, b'{"call":1}'), (200, b'{"call":2}')]
    ttl[0] = 0.0
    assert not cache.handles({"type": "http", "method": "GET", "path": "/api/devices"})
    ttl[0] = 1.0
    assert cache.handles({"type": "http", "method": "GET", "path": "/api/devices"})
    assert not cache.handles({"type": "http", "method": "HEAD", "path": "/api/devices"})
    assert not cache.handles({"type": "http", "method": "GET", "path": "/api/devices/dev-a"})


def _accepted_socket_options(peer: tuple[str, int]) -> int:
    """TCP_NODELAY of this process's socket whose peer is ``peer`` (the server's end)."""
    for name in os.listdir("/proc/self/fd"):
        try:
            sock = socket.socket(fileno=os.dup(int(name)))
        except OSError:
            continue
        with sock:
            try:
                if sock.type != socket.SOCK_STREAM or sock.getpeername() != peer:
                    continue
                return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            except OSError:
                continue
    raise AssertionError(f"no accepted socket with peer {peer}")


def test_the_api_server_turns_nagle_off_on_its_connections() -> None:
    """A response goes out as head then body: with Nagle on, the body waits for the
    client's delayed ACK (about 40 ms a request on Linux)."""

    async def hello(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    server = ApiServer(hello, "127.0.0.1", 0)
    server.start()
    try:
        with httpx.Client(base_url=server.url) as client:
            assert client.get("/").text == "ok"
            stream = client.get("/", extensions={}).extensions["network_stream"]
            local = stream.get_extra_info("socket").getsockname()
            assert _accepted_socket_options(local) == 1
    finally:
        server.stop()
