"""IPFS adapters over the kubo RPC API (``/api/v0/...``): a ContentStore and a Transport.

Both speak plain HTTP through httpx to a local daemon (kubo in production,
js-ipfs in tests: it serves the same API). Blocks are put as raw-codec CIDv1
and the CID the daemon returns must equal the one computed locally; js-ipfs
ignores kubo's ``cid-codec`` parameter and wants the older ``format=raw&version=1``,
so the store falls back to that dialect once and remembers it.

Pubsub topics and message data travel multibase-encoded (``u`` + base64url).
A subscription is a long-lived streamed response of JSON lines (js-ipfs sends
``{}`` first); it is re-opened after any failure until unsubscribed.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from gateway.peer.cid import check_cid, cid_of, verify_block
from gateway.peer.errors import (
    BlockNotFound,
    BlockTooLarge,
    Rejected,
    StoreUnavailable,
    TransportError,
)
from gateway.peer.store import DEFAULT_MAX_BLOCK, check_size
from gateway.peer.transport import MAX_MESSAGE_BYTES, Handler

log = logging.getLogger(__name__)

_NOT_FOUND_HINTS = ("timed out", "deadline exceeded", "not found", "could not find", "aborted")


def multibase_encode(data: bytes) -> str:
    return "u" + base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def multibase_decode(text: str) -> bytes:
    if not text:
        raise ValueError("empty multibase string")
    prefix, body = text[0], text[1:]
    pad = "=" * (-len(body) % 4)
    if prefix == "u":
        return base64.urlsafe_b64decode(body + pad)
    if prefix == "m":
        return base64.b64decode(body + pad)
    if prefix == "b":
        return base64.b32decode(body.upper() + "=" * (-len(body) % 8))
    raise ValueError(f"unsupported multibase prefix {prefix!r}")


class IpfsRpc:
    """A small client for the RPC API: POST only, errors translated, bounded retries."""

    def __init__(
        self, api_url: str = "http://127.0.0.1:5001", *, timeout: float = 10.0, retries: int = 2
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self._client = httpx.Client(base_url=self.api_url + "/api/v0", timeout=timeout)

    def call(
        self,
        command: str,
        params: dict[str, Any],
        *,
        data: bytes | None = None,
        timeout: float | None = None,
        retry_errors: bool = True,
    ) -> httpx.Response:
        """POST ``command``; retry connection failures; raise StoreUnavailable / BlockNotFound."""
        files = {"file": ("data", data, "application/octet-stream")} if data is not None else None
        attempt = 0
        while True:
            try:
                response = self._client.post(
                    command,
                    params=params,
                    files=files,
                    timeout=timeout if timeout is not None else self.timeout,
                )
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                if attempt < self.retries and not isinstance(exc, httpx.ReadTimeout):
                    attempt += 1
                    time.sleep(0.2 * attempt)
                    continue
                raise StoreUnavailable(
                    f"IPFS RPC {command} at {self.api_url} failed: {type(exc).__name__}: {exc}"
                ) from exc
            if response.status_code == 200:
                return response
            message = _error_message(response)
            if any(hint in message.lower() for hint in _NOT_FOUND_HINTS):
                raise BlockNotFound(f"IPFS RPC {command} {params.get('arg', '')}: {message}")
            if response.status_code >= 500 and retry_errors and attempt < self.retries:
                attempt += 1
                time.sleep(0.2 * attempt)
                continue
            raise StoreUnavailable(
                f"IPFS RPC {command} {params.get('arg', '')} answered "
                f"{response.status_code}: {message}"
            )

    def close(self) -> None:
        self._client.close()


def _error_message(response: httpx.Response) -> str:
    try:
        doc = response.json()
        return str(doc.get("Message", doc))
    except (json.JSONDecodeError, ValueError, AttributeError):
        return response.text[:200]


class IpfsStore:
    """ContentStore on an IPFS daemon. Blocks are pinned when put by this gateway."""

    def __init__(
        self, rpc: IpfsRpc, *, max_block_bytes: int = DEFAULT_MAX_BLOCK, get_timeout: float = 5.0
    ) -> None:
        self.rpc = rpc
        self.max_block_bytes = max_block_bytes
        self.get_timeout = get_timeout
        self._legacy_put: bool | None = None  # None: not yet known which dialect the daemon speaks

    def put(self, data: bytes) -> str:
        check_size(data, self.max_block_bytes)
        expected = cid_of(data)
        dialects = [False, True] if self._legacy_put is None else [self._legacy_put]
        problem = ""
        for legacy in dialects:
            params = {"mhtype": "sha2-256", "cid-base": "base32", "pin": "true"}
            params.update({"format": "raw", "version": "1"} if legacy else {"cid-codec": "raw"})
            try:
                response = self.rpc.call(
                    "block/put", params, data=data, retry_errors=self._legacy_put is not None
                )
            except StoreUnavailable as exc:
                if exc.__cause__ is not None:  # the daemon is unreachable: no dialect will help
                    raise
                problem = str(exc)
                continue
            key = response.json().get("Key")
            if key == expected:
                self._legacy_put = legacy
                return expected
            problem = f"IPFS stored a block as {key!r}, expected {expected}"
        raise StoreUnavailable(problem)

    def get(self, cid: str, *, timeout: float | None = None) -> bytes:
        try:
            check_cid(cid)
        except Rejected as exc:
            raise BlockNotFound(str(exc)) from exc
        wait = self.get_timeout if timeout is None else timeout
        response = self.rpc.call(
            "block/get", {"arg": cid, "timeout": f"{max(wait, 0.1):.1f}s"}, timeout=wait + 2.0
        )
        data = response.content
        if len(data) > self.max_block_bytes:
            raise BlockTooLarge(f"block {cid} of {len(data)} bytes exceeds {self.max_block_bytes}")
        verify_block(cid, data)
        return data

    def pin(self, cid: str) -> None:
        self.rpc.call(
            "pin/add", {"arg": check_cid(cid), "cid-base": "base32"}, timeout=self.get_timeout + 2.0
        )

    def node_id(self) -> str:
        return str(self.rpc.call("id", {}).json()["ID"])


class IpfsPubsubTransport:
    """Transport on IPFS pubsub. One reader thread per subscribed topic, reconnecting."""

    def __init__(
        self,
        api_url: str = "http://127.0.0.1:5001",
        *,
        timeout: float = 5.0,
        reconnect_s: float = 0.5,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.rpc = IpfsRpc(api_url, timeout=timeout, retries=1)
        self.reconnect_s = reconnect_s
        self._subs: dict[str, _Subscription] = {}
        self._lock = threading.Lock()

    def publish(self, topic: str, data: bytes) -> None:
        if len(data) > MAX_MESSAGE_BYTES:
            raise TransportError(f"gossip message of {len(data)} bytes exceeds {MAX_MESSAGE_BYTES}")
        try:
            self.rpc.call("pubsub/pub", {"arg": multibase_encode(topic.encode())}, data=data)
        except (StoreUnavailable, BlockNotFound) as exc:
            raise TransportError(f"cannot publish on {topic!r}: {exc}") from exc

    def subscribe(self, topic: str, handler: Handler) -> None:
        with self._lock:
            if topic in self._subs:
                self._subs[topic].handlers.append(handler)
                return
            sub = _Subscription(self.api_url, topic, handler, self.reconnect_s)
            self._subs[topic] = sub
        sub.start()

    def unsubscribe(self, topic: str) -> None:
        with self._lock:
            sub = self._subs.pop(topic, None)
        if sub is not None:
            sub.stop()

    def connected(self, topic: str) -> bool:
        """Whether the topic's stream is open now (tests wait on this before publishing)."""
        sub = self._subs.get(topic)
        return sub is not None and sub.open.is_set()

    def close(self) -> None:
        for topic in list(self._subs):
            self.unsubscribe(topic)
        self.rpc.close()


class _Subscription:
    def __init__(self, api_url: str, topic: str, handler: Handler, reconnect_s: float) -> None:
        self.api_url = api_url
        self.topic = topic
        self.handlers: list[Callable[[bytes], None]] = [handler]
        self.reconnect_s = reconnect_s
        self.open = threading.Event()
        self.reconnects = 0
        self._stop = threading.Event()
        self._client: httpx.Client | None = None
        self._response: httpx.Response | None = None
        self._thread = threading.Thread(target=self._run, name=f"pubsub-{topic}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        response = self._response
        if response is not None:  # wake the reader blocked in recv()
            stream = response.extensions.get("network_stream")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=3)

    def _run(self) -> None:
        arg = multibase_encode(self.topic.encode())
        while not self._stop.is_set():
            self._client = httpx.Client(
                base_url=self.api_url + "/api/v0", timeout=httpx.Timeout(5.0, read=None)
            )
            try:
                with self._client.stream("POST", "pubsub/sub", params={"arg": arg}) as response:
                    if response.status_code != 200:
                        raise TransportError(f"pubsub/sub {self.topic!r}: {response.status_code}")
                    self._response = response
                    self.open.set()
                    for line in response.iter_lines():
                        if self._stop.is_set():
                            return
                        self._deliver(line)
            except Exception as exc:  # any failure: drop the stream and open a new one
                if not self._stop.is_set():
                    log.debug("pubsub stream for %r failed: %s", self.topic, exc)
            finally:
                self.open.clear()
                self._response = None
                self._client.close()
            if not self._stop.wait(self.reconnect_s):
                self.reconnects += 1

    def _deliver(self, line: str) -> None:
        line = line.strip()
        if not line:
            return
        try:
            doc = json.loads(line)
        except json.JSONDecodeError:
            log.debug("pubsub line on %r is not JSON: %.80r", self.topic, line)
            return
        if not isinstance(doc, dict) or "data" not in doc:
            return  # js-ipfs opens every stream with "{}"
        try:
            data = multibase_decode(str(doc["data"]))
        except (ValueError, TypeError):
            log.debug("pubsub data on %r is not multibase", self.topic)
            return
        for handler in list(self.handlers):
            try:
                handler(data)
            except Exception:
                log.exception("gossip handler for %r failed", self.topic)
