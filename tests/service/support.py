"""Helpers for the service tests: configs, a populated store, a real gateway process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.broker import PrivateBroker
from gateway.store import Changes, Store, pack_values
from gateway.store.changes import StatusUpdate
from shared.codec import Batch, encode_json

REPO = Path(__file__).resolve().parents[2]
TOKEN = "test-token-0123456789"


def toml_text(tables: dict[str, dict[str, Any]]) -> str:
    parts = []
    for name, values in tables.items():
        lines = [f"[{name}]"] + [f"{k} = {json.dumps(v)}" for k, v in values.items()]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def write_config(directory: Path, broker: PrivateBroker, prefix: str,
                 **sections: dict[str, Any]) -> Path:
    """A gateway TOML on ``broker`` with the API on a free port; ``sections`` override."""
    tables: dict[str, dict[str, Any]] = {
        "gateway": {"id": "gw-test", "data_dir": str(directory / "data")},
        "mqtt": {"port": broker.port, "topic_prefix": prefix, "client_id": f"gw-{prefix}"},
        "training": {"enabled": False},
        "api": {"port": 0},
    }
    for name, values in sections.items():
        tables.setdefault(name, {}).update(values)
    path = directory / "gateway.toml"
    path.write_text(toml_text(tables))
    return path


def fill_store(path: Path, devices: dict[str, int], *, channels: tuple[str, ...] = ("temp", "hum"),
               start: float = 1_700_000_000.0, period: float = 60.0,
               anomalies: tuple[int, ...] = ()) -> dict[str, list[tuple[float, list[float]]]]:
    """Commit ``n`` readings per device (temp = 20 + i/10, hum = 50 - i/10); returns them."""
    written: dict[str, list[tuple[float, list[float]]]] = {}
    with Store.open(path) as store:
        cset = store.channel_set(channels)
        for device, n in devices.items():
            key = store.register_device(device)
            changes = Changes()
            rows = []
            written[device] = []
            for i in range(n):
                ts = start + i * period
                values = [20.0 + i / 10, 50.0 - i / 10][: len(channels)]
                rows.append((key, 1, i, ts, cset, pack_values(values), int(i in anomalies)))
                written[device].append((ts, values))
            changes.rows[key] = rows
            changes.boots[(key, 1)] = start
            changes.seen[key] = start + (n - 1) * period
            changes.statuses[key] = StatusUpdate(time=start, online=True,
                                                 doc_json='{"state":"online","fw":"1.0"}',
                                                 firmware="1.0")
            store.commit(changes)
    return written


def register_model(db_path: Path, device: str, seed: int = 0) -> int:
    """Train a tiny forecaster on a synthetic series and register it; returns the version."""
    from gateway.config import TrainingSection
    from gateway.learning.forecast import train_forecast
    from gateway.learning.registry import ModelRegistry

    rng = np.random.default_rng(seed)
    n = 400
    ts = 1_700_000_000.0 + np.arange(n) * 60.0
    values = np.stack([20 + np.sin(np.arange(n) / 10) + rng.normal(0, 0.05, n),
                       50 + np.cos(np.arange(n) / 10) + rng.normal(0, 0.05, n)], axis=1)
    settings = TrainingSection(epochs=3, min_windows=16, hidden_units=8)
    model = train_forecast(ts, values, ["temp", "hum"], settings)
    with ModelRegistry(db_path) as registry:
        return registry.register(device, "forecast", model.weights, model.metadata())


def publisher(broker: PrivateBroker, client_id: str) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client


def publish_readings(client: mqtt.Client, prefix: str, device: str, n: int, *, boot: int = 1,
                     seq: int = 0, t0: int | None = None, batch: int = 20,
                     anomalies_every: int = 0) -> int:
    """Publish ``n`` readings in JSON batches (QoS 1, waits for PUBACK); returns n."""
    t0 = int(time.time()) - n if t0 is None else t0
    sent = 0
    while sent < n:
        count = min(batch, n - sent)
        rows = [[20.0 + (sent + i) % 7 * 0.3, 45.0 + (sent + i) % 5 * 0.5] for i in range(count)]
        marks = tuple(i for i in range(count)
                      if anomalies_every and (sent + i) % anomalies_every == 0)
        payload = encode_json(Batch(boot, seq + sent, t0 + sent, ["temp", "hum"], rows,
                                    period_ms=1000, anomalies=marks))
        info = client.publish(f"{prefix}/{device}/data", payload, qos=1)
        info.wait_for_publish(10)
        sent += count
    return sent


class GatewayProcess:
    """``python -m gateway run --config F`` as a real process; reads its API URL."""

    READY = re.compile(r"learnae-gateway: ready \((.*?)(?:; api (\S+))?\)")

    def __init__(self, config_path: Path, env: dict[str, str] | None = None) -> None:
        self.config_path = config_path
        self.env = env or {}
        self.proc: subprocess.Popen[str] | None = None
        self.url: str | None = None
        self.lines: list[str] = []
        self._ready = threading.Event()

    def start(self, timeout: float = 30.0) -> GatewayProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", "--config", str(self.config_path)],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
        )
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(timeout):
            self.stop()
            raise AssertionError("gateway not ready: " + "".join(self.lines)[-3000:])
        if self.proc.poll() is not None:
            raise AssertionError(f"gateway exited {self.proc.returncode}: {''.join(self.lines)}")
        return self

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            match = self.READY.search(line)
            if match:
                self.url = match.group(2)
                self._ready.set()
        self._ready.set()

    def terminate(self) -> tuple[int, float]:
        """SIGTERM; returns (exit code, seconds until exit)."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(15)
        return code, time.monotonic() - started

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_for(predicate: Any, timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


class BrokerPublisher:
    """The API's publisher port over a real MQTT client (what the Ingestor provides)."""

    def __init__(self, broker: PrivateBroker) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def publish_retained(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1, retain=True).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def retained(broker: PrivateBroker, topic: str, timeout: float = 5.0) -> bytes | None:
    """The retained message on ``topic`` (None if there is none within ``timeout``)."""
    got: list[bytes] = []
    done = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)

    def on_message(_c: Any, _u: Any, msg: Any) -> None:
        got.append(msg.payload)
        done.set()

    client.on_message = on_message
    client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
    client.connect(broker.host, broker.port)
    client.loop_start()
    done.wait(timeout)
    client.disconnect()
    client.loop_stop()
    return got[0] if got else None
