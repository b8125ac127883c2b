"""The Transport port (gossip) and its loopback adapters.

Gossip is fire-and-forget: a message may be lost, duplicated or delayed, and
the log protocol is built so that does not matter (heads are re-announced and
missing entries are fetched by walking ``prev``).

- ``LocalHub`` / ``HubTransport``: peers in one process; delivery is synchronous
  and a policy decides per (sender, receiver) whether a message gets through, so
  experiments can cut partitions, take peers offline and drop messages.
- ``UdpTransport``: peers in separate processes on one machine, one UDP socket
  on 127.0.0.1 each, sending every message to every listed loopback port.
"""

from __future__ import annotations

import ipaddress
import logging
import random
import socket
import threading
from collections import defaultdict
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from gateway.errors import TransportError

log = logging.getLogger(__name__)

Handler = Callable[[bytes], None]
MAX_MESSAGE_BYTES = 4096


@runtime_checkable
class Transport(Protocol):
    """Best-effort publish/subscribe of small messages on named topics."""

    def publish(self, topic: str, data: bytes) -> None: ...

    def subscribe(self, topic: str, handler: Handler) -> None: ...

    def unsubscribe(self, topic: str) -> None: ...

    def close(self) -> None: ...


class LocalHub:
    """An in-process gossip medium shared by several ``HubTransport`` endpoints.

    ``reachable(sender, receiver)`` decides whether a message gets through;
    ``drop_rate`` loses messages at random (seeded) on top of that.
    """

    def __init__(self, *, drop_rate: float = 0.0, seed: int = 0) -> None:
        self.drop_rate = drop_rate
        self.reachable: Callable[[str, str], bool] = lambda sender, receiver: True
        self._rng = random.Random(seed)
        self._subs: dict[str, list[tuple[str, Handler]]] = defaultdict(list)
        self._lock = threading.Lock()
        self.sent_bytes: dict[str, int] = defaultdict(int)
        self.received_bytes: dict[str, int] = defaultdict(int)

    def endpoint(self, name: str) -> HubTransport:
        return HubTransport(self, name)

    def _subscribe(self, name: str, topic: str, handler: Handler) -> None:
        with self._lock:
            self._subs[topic].append((name, handler))

    def _unsubscribe(self, name: str, topic: str | None = None) -> None:
        with self._lock:
            for key in [topic] if topic is not None else list(self._subs):
                self._subs[key] = [(n, h) for n, h in self._subs.get(key, ()) if n != name]

    def _publish(self, sender: str, topic: str, data: bytes) -> None:
        with self._lock:
            targets = list(self._subs.get(topic, ()))
        for name, handler in targets:
            if name == sender or not self.reachable(sender, name):
                continue
            if self.drop_rate and self._rng.random() < self.drop_rate:
                continue
            self.sent_bytes[sender] += len(data)  # per delivery: what a mesh carries for it
            self.received_bytes[name] += len(data)
            try:
                handler(data)
            except Exception:  # a faulty subscriber must not break the sender
                log.exception("gossip handler of %s failed", name)


class HubTransport:
    """One peer's endpoint on a LocalHub."""

    def __init__(self, hub: LocalHub, name: str) -> None:
        self.hub = hub
        self.name = name

    def publish(self, topic: str, data: bytes) -> None:
        if len(data) > MAX_MESSAGE_BYTES:
            raise TransportError(f"gossip message of {len(data)} bytes exceeds {MAX_MESSAGE_BYTES}")
        self.hub._publish(self.name, topic, data)

    def subscribe(self, topic: str, handler: Handler) -> None:
        self.hub._subscribe(self.name, topic, handler)

    def unsubscribe(self, topic: str) -> None:
        self.hub._unsubscribe(self.name, topic)

    def close(self) -> None:
        self.hub._unsubscribe(self.name)


def _check_loopback(host: str, what: str) -> None:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise TransportError(f"{what} {host!r} is not a loopback address")


def parse_endpoints(text: str) -> list[tuple[str, int]]:
    """Parse ``"127.0.0.1:7401,127.0.0.1:7402"``; only loopback addresses are accepted."""
    out = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        host, sep, port = item.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise TransportError(f"gossip endpoint {item!r} is not host:port")
        _check_loopback(host, "gossip endpoint")
        out.append((host, int(port)))
    return out


class UdpTransport:
    """Gossip between processes on one machine over UDP on 127.0.0.1.

    A datagram is ``len(topic)`` (1 byte), the topic (UTF-8) and the payload.
    Every message goes to every endpoint in ``peers``; a receiver thread hands
    datagrams to the topic's handlers. Loss is tolerated by design.
    """

    def __init__(self, *, port: int, peers: list[tuple[str, int]], host: str = "127.0.0.1") -> None:
        _check_loopback(host, "gossip bind address")
        for peer_host, _ in peers:
            _check_loopback(peer_host, "gossip endpoint")
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self._sock.bind((host, port))
        except OSError as exc:
            self._sock.close()
            raise TransportError(f"cannot bind gossip to {host}:{port}: {exc.strerror}") from exc
        self._sock.settimeout(0.5)  # here, not in the thread: close() may come before it runs
        self.address = self._sock.getsockname()
        self.peers = [p for p in peers if p != self.address]
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._receive, name="udp-gossip", daemon=True)
        self._thread.start()

    def publish(self, topic: str, data: bytes) -> None:
        name = topic.encode()
        if len(name) > 255 or len(data) > MAX_MESSAGE_BYTES:
            raise TransportError(f"gossip message on {topic!r} is too large ({len(data)} bytes)")
        datagram = bytes([len(name)]) + name + data
        for peer in self.peers:
            try:
                self._sock.sendto(datagram, peer)
            except OSError as exc:  # a peer that is down is not an error for gossip
                log.debug("gossip to %s failed: %s", peer, exc)

    def subscribe(self, topic: str, handler: Handler) -> None:
        self._handlers[topic].append(handler)

    def unsubscribe(self, topic: str) -> None:
        self._handlers.pop(topic, None)

    def _receive(self) -> None:
        while not self._closed.is_set():
            try:
                datagram, _ = self._sock.recvfrom(MAX_MESSAGE_BYTES + 512)
            except TimeoutError:
                continue
            except OSError:
                if self._closed.is_set():
                    return
                continue
            if not datagram:
                continue
            size = datagram[0]
            topic = datagram[1 : 1 + size].decode("utf-8", errors="replace")
            for handler in list(self._handlers.get(topic, ())):
                try:
                    handler(datagram[1 + size :])
                except Exception:
                    log.exception("gossip handler for %r failed", topic)

    def close(self) -> None:
        self._closed.set()
        self._sock.close()
        self._thread.join(timeout=2)


class NullTransport:
    """No gossip at all: for ``transport = "ledger"``, where heads come from the ledger."""

    def publish(self, topic: str, data: bytes) -> None:
        return None

    def subscribe(self, topic: str, handler: Handler) -> None:
        return None

    def unsubscribe(self, topic: str) -> None:
        return None

    def close(self) -> None:
        return None
