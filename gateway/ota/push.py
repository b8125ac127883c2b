"""Sending bundles to boards through the broker, and following them to an outcome.

For each device: ``{"cmd": "ota", "id": T, "chunk": C}`` on ``<prefix>/<id>/cmd``
(QoS 1; the board resets into its receiver), then, whenever the board reports
on ``<prefix>/<id>/status/ota`` where it stands (``ready`` after each
connect, ``receiving`` after chunks), chunks ``"O" 0x01 [8-byte T][u32
offset][data]`` on ``<prefix>/<id>/ota`` (QoS 1) from the offset it needs, at
most ``window`` chunks ahead of its last acknowledgement; no progress for
``ack_timeout`` seconds resends from there. ``switching`` ends the transfer;
the outcome is the board's retained status: ``ota.state == "confirmed"`` with
the new ``fw`` (updated), ``refused`` or ``rolled_back`` (failed, with the
board's reason). One paho client serves every device at once.
"""

from __future__ import annotations

import json
import secrets
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.ota.bundle import Bundle

CHUNK_HEADER = 14


def publish_size(topic: str, payload: int, qos: int = 1) -> int:
    """Bytes of one PUBLISH packet on the wire: fixed header, topic, packet id, payload."""
    remaining = 2 + len(topic.encode()) + (2 if qos else 0) + payload
    length_bytes = 1 if remaining < 128 else 2 if remaining < 16384 else 3
    return 1 + length_bytes + remaining


@dataclass
class Outcome:
    """Where one device's update stands (``state`` final once ``done``)."""

    device: str
    transfer_id: str
    version: str
    total: int
    # requested, receiving, switching, updated, refused, rolled_back, rotated, timeout
    state: str = "requested"
    next: int = 0
    reason: str | None = None
    wire_bytes: int = 0  # the board's link: chunks and command in, acknowledgements out
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    resends: int = 0
    board_heap_peak: int = 0  # the board's heap in use at its fullest, while receiving


    @property
    def done(self) -> bool:
        return self.finished is not None

    def as_dict(self) -> dict[str, Any]:
        return {"device": self.device, "id": self.transfer_id, "version": self.version,
                "state": self.state, "next": self.next, "total": self.total,
                "reason": self.reason, "wire_bytes": self.wire_bytes, "resends": self.resends,
                "board_heap_peak": self.board_heap_peak,
                "seconds": None if self.finished is None else round(
                    self.finished - self.started, 3)}


class _Transfer:
    def __init__(self, outcome: Outcome, stream: bytes) -> None:
        self.outcome = outcome
        self.stream = stream
        self.sent = 0  # stream offset up to which chunks are out
        self.acked = 0
        self.last_progress = time.monotonic()


class OtaPush:
    """Push bundles to boards; ``push`` blocks until every outcome is final."""

    def __init__(self, *, host: str, port: int, prefix: str, username: str | None = None,
                 password: str | None = None, chunk: int = 1024, window: int = 4,
                 ack_timeout: float = 5.0, confirm_s: int = 120,
                 on_progress: Callable[[Outcome], None] | None = None) -> None:
        if not 64 <= chunk <= 4096 - CHUNK_HEADER:
            raise ValueError(f"chunk must be 64..{4096 - CHUNK_HEADER} bytes, got {chunk}")
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        self.host, self.port, self.prefix = host, port, prefix
        self.username, self.password = username, password
        self.chunk, self.window, self.ack_timeout = chunk, window, ack_timeout
        self.confirm_s = confirm_s
        self.on_progress = on_progress
        self._lock = threading.Lock()
        self._transfers: dict[str, _Transfer] = {}
        self._client: Any = None

    # -- paho ---------------------------------------------------------------
    def _connect(self) -> Any:
        import paho.mqtt.client as mqtt

        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                             client_id=f"learnae-ota-{secrets.token_hex(4)}")
        if self.username is not None:
            client.username_pw_set(self.username, self.password)
        client.on_message = self._on_message
        subscribed = threading.Event()
        client.on_subscribe = lambda *a: subscribed.set()
        client.connect(self.host, self.port, keepalive=30)
        client.loop_start()
        client.subscribe([(f"{self.prefix}/+/status/ota", 1), (f"{self.prefix}/+/status", 1)])
        if not subscribed.wait(10):
            client.loop_stop()
            raise OSError(f"broker {self.host}:{self.port} did not confirm the subscription")
        return client

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        parts = msg.topic.split("/")
        if len(parts) < 3:
            return
        device = parts[-3] if parts[-1] == "ota" else parts[-2]
        with self._lock:
            t = self._transfers.get(device)
            if t is None or t.outcome.done:
                return
            try:
                doc = json.loads(msg.payload) if msg.payload else None
            except ValueError:
                return
            if not isinstance(doc, dict):
                return
            if parts[-1] == "ota":
                t.outcome.wire_bytes += publish_size(msg.topic, len(msg.payload)) + 4
                self._on_ack(t, doc)
            else:
                self._on_status(t, doc)

    def _on_ack(self, t: _Transfer, doc: dict[str, Any]) -> None:
        o = t.outcome
        if doc.get("id") != o.transfer_id:
            return
        state = doc.get("state")
        nxt = doc.get("next")
        peak = doc.get("heap_peak")
        if isinstance(peak, int) and peak > o.board_heap_peak:
            o.board_heap_peak = peak
        if isinstance(nxt, int) and 0 <= nxt <= o.total:
            if nxt > t.acked:
                t.last_progress = time.monotonic()
            if state == "ready" or nxt < t.acked:
                t.sent = nxt  # the board (re)connected: resend from what its flash holds
            t.acked = o.next = nxt
        if state in ("ready", "receiving"):
            o.state = "receiving"
            self._send(t)
        elif state == "switching":
            o.state = "switching"
            t.last_progress = time.monotonic()
        elif state == "refused":
            self._finish(t, "refused", str(doc.get("reason")))
        elif state == "rotated":
            self._finish(t, "rotated")
        self._progress(o)

    def _on_status(self, t: _Transfer, doc: dict[str, Any]) -> None:
        o = t.outcome
        ota = doc.get("ota")
        if not isinstance(ota, dict) or ota.get("id") != o.transfer_id:
            return
        if ota.get("state") == "confirmed" and doc.get("fw") == o.version:
            self._finish(t, "updated")
        elif ota.get("state") in ("refused", "rolled_back"):
            self._finish(t, str(ota["state"]), str(ota.get("reason")))

    def _send(self, t: _Transfer) -> None:
        o = t.outcome
        topic = f"{self.prefix}/{o.device}/ota"
        tid = bytes.fromhex(o.transfer_id)
        limit = min(o.total, t.acked + self.window * self.chunk)
        while t.sent < limit:
            data = t.stream[t.sent:t.sent + self.chunk]
            payload = b"O\x01" + tid + struct.pack(">I", t.sent) + data
            self._client.publish(topic, payload, qos=1)
            o.wire_bytes += publish_size(topic, len(payload)) + 4  # and its PUBACK
            t.sent += len(data)

    def _finish(self, t: _Transfer, state: str, reason: str | None = None) -> None:
        t.outcome.state = state
        t.outcome.reason = reason
        t.outcome.finished = time.monotonic()
        self._progress(t.outcome)

    def _progress(self, o: Outcome) -> None:
        if self.on_progress is not None:
            self.on_progress(o)

    # -- the public face ----------------------------------------------------
    def push(self, jobs: dict[str, tuple[Bundle, bytes]], timeout: float = 300.0,
             rotate: dict[str, bytes] | None = None) -> dict[str, Outcome]:
        """Update every device of ``jobs`` (device -> (bundle, its key)).

        ``rotate`` (device -> new key) sends a key rotation instead of files
        for those devices (their bundle is then ignored).
        """
        from gateway.ota.bundle import head

        self._client = self._connect()
        try:
            with self._lock:
                for device, (bundle, key) in jobs.items():
                    tid = secrets.token_hex(8)
                    if rotate and device in rotate:
                        stream = head(rotation_manifest(tid, key, rotate[device]), key)
                        version = bundle.version if bundle is not None else ""
                    else:
                        stream = bundle.stream(tid, key, self.confirm_s)
                        version = bundle.version
                    o = Outcome(device, tid, version, len(stream))
                    self._transfers[device] = _Transfer(o, stream)
                    topic = f"{self.prefix}/{device}/cmd"
                    cmd = json.dumps({"cmd": "ota", "id": tid, "chunk": self.chunk})
                    self._client.publish(topic, cmd, qos=1)
                    o.wire_bytes += publish_size(topic, len(cmd)) + 4
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                with self._lock:
                    pending = [t for t in self._transfers.values() if not t.outcome.done]
                    for t in pending:
                        stalled = time.monotonic() - t.last_progress > self.ack_timeout
                        if t.outcome.state == "receiving" and stalled and t.sent > t.acked:
                            t.sent = t.acked  # acknowledgements stopped: resend from there
                            t.outcome.resends += 1
                            t.last_progress = time.monotonic()
                            self._send(t)
                if not pending:
                    break
                time.sleep(0.05)
            with self._lock:
                for t in self._transfers.values():
                    if not t.outcome.done:
                        self._finish(t, "timeout", f"no outcome within {timeout:g} s "
                                     f"(last state {t.outcome.state}, at byte {t.acked} "
                                     f"of {t.outcome.total})")
                return {d: t.outcome for d, t in self._transfers.items()}
        finally:
            self._client.loop_stop()
            self._client.disconnect()


def rotation_manifest(transfer_id: str, key: bytes, new_key: bytes) -> bytes:
    """A manifest that carries a new key, masked with HMAC(old key, "rotate:" + id)."""
    import hashlib
    import hmac

    if len(new_key) != 32:
        raise ValueError(f"a rotated key must be 32 bytes, got {len(new_key)}")
    pad = hmac.new(key, b"rotate:" + transfer_id.encode(), hashlib.sha256).digest()
    masked = bytes(a ^ b for a, b in zip(new_key, pad, strict=True))
    from gateway.ota.bundle import manifest_bytes

    return manifest_bytes({"v": 1, "id": transfer_id, "version": "", "rotate": masked.hex()})
