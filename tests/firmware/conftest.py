"""Fixtures for firmware tests: device configs, a paho collector, an .mpy build."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from gateway.devices import make_device_config

from gateway.commands.flash import build_firmware
from gateway.commands.sim import run_firmware
from shared.codec import decode_payload


def write_config(directory: Path, port: int, prefix: str, device: str = "dev1",
                 **overrides: Any) -> Path:
    sensors = overrides.pop("sensors", [{"type": "simulated", "seed": 7}])
    mqtt_extra = overrides.pop("mqtt", {})
    doc = make_device_config(device, mqtt_host="127.0.0.1", mqtt_port=port, topic_prefix=prefix,
                             sensors=sensors, period_ms=overrides.pop("period_ms", 0),
                             batch_size=overrides.pop("batch_size", 20), **overrides)
    doc["mqtt"].update({"timeout_ms": 1000, "backoff_max_ms": 1000, **mqtt_extra})
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(doc))
    return directory / "config.json"


class Collector:
    """A paho subscriber (persistent session) that decodes every data batch."""

    def __init__(self, port: int, prefix: str, username: str | None = None,
                 password: str | None = None) -> None:
        self.prefix = prefix
        self.keys: list[tuple[str, int, int]] = []
        self.batches: list[Any] = []
        self.status: dict[str, dict] = {}
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"c-{prefix}",
                                  clean_session=False)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, u, f, rc, p=None: c.subscribe(f"{prefix}/#", qos=1)
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.connect("127.0.0.1", port, keepalive=5)
        self.client.loop_start()
        deadline = time.monotonic() + 5
        while not self.client.is_connected() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        device, kind = msg.topic.split("/")[1:3]
        with self.lock:
            if kind == "data":
                batch = decode_payload(msg.payload)
                self.batches.append(batch)
                for i in range(len(batch.values)):
                    self.keys.append((device, batch.boot, batch.seq + i))
            elif kind == "status" and msg.payload:
                self.status[device] = json.loads(msg.payload)

    def wait_for(self, n: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while len(set(self.keys)) < n and time.monotonic() < deadline:
            time.sleep(0.05)

    def wait_status(self, pred: Any, device: str = "dev1", timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                doc = self.status.get(device)
            if doc is not None and pred(doc):
                return doc
            time.sleep(0.05)
        raise AssertionError(f"status never matched; last {self.status.get(device)}")

    def publish(self, topic: str, payload: bytes, retain: bool = True) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def collector_factory() -> Iterator[Any]:
    made: list[Collector] = []

    def make(port: int, prefix: str) -> Collector:
        made.append(Collector(port, prefix))
        return made[-1]

    yield make
    for c in made:
        c.close()


@pytest.fixture(scope="session")
def mpy_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_firmware(tmp_path_factory.mktemp("mpy"), host=True)


def run_sim(state_dir: Path, count: int, heap: str = "256k", build_dir: Path | None = None,
            timeout: float = 60.0, board: str | None = None) -> tuple[int, str]:
    """Run the firmware to completion (``board``: a board profile of the host
    shims); return (exit code, stdout)."""
    out = state_dir / "stdout.txt"
    with out.open("w") as handle:
        holder: dict[str, int] = {}
        thread = threading.Thread(target=lambda: holder.setdefault("code", run_firmware(
            state_dir, count=count, heap=heap, build_dir=build_dir, stdout=handle,
            stderr=handle, board=board)))
        thread.start()
        thread.join(timeout)
        assert not thread.is_alive(), f"firmware still running after {timeout}s: {out.read_text()}"
    return holder["code"], out.read_text()


# The board profiles of the host shims (edge_firmware/host/machine.py); "unix" is
# the plain host. Tests that concern a board's surface run under each.
BOARD_PROFILES = ("rp2", "esp32")


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts every connection and never answers (a broker
    that hangs). ``stop`` closes it and every accepted connection; a port freed this way
    can then be taken by a real broker."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port: int = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        self.listener.settimeout(0.1)
        while not self._stop.is_set():
            with contextlib.suppress(OSError):
                self.accepted.append(self.listener.accept()[0])

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join()
        self.listener.close()
        for conn in self.accepted:
            conn.close()
