"""Helpers for the service tests: a populated store, models, readings, retained messages."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
from gateway_rig import REPO, GatewayProcess, publisher, toml_text, wait_for, write_config
from paho.mqtt.enums import CallbackAPIVersion

from gateway.rigs.broker import PrivateBroker
from gateway.store import Changes, Store, pack_values
from gateway.store.changes import StatusUpdate
from shared.codec import Batch, encode_json

__all__ = ["REPO", "TOKEN", "GatewayProcess", "publisher", "toml_text", "wait_for",
           "write_config"]

TOKEN = "test-token-0123456789"


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


def publish_readings(client: mqtt.Client, prefix: str, device: str, n: int, *, boot: int = 1,
                     seq: int = 0, t0: int | None = None, batch: int = 20,
                     anomalies_every: int = 0, spikes: tuple[int, ...] = ()) -> int:
    """Publish ``n`` readings in JSON batches (QoS 1, waits for PUBACK); returns n."""
    t0 = int(time.time()) - n if t0 is None else t0
    sent = 0
    while sent < n:
        count = min(batch, n - sent)
        rows = [[20.0 + (sent + i) % 7 * 0.3 + (10.0 if sent + i in spikes else 0.0),
                 45.0 + (sent + i) % 5 * 0.5] for i in range(count)]
        marks = tuple(i for i in range(count)
                      if anomalies_every and (sent + i) % anomalies_every == 0)
        payload = encode_json(Batch(boot, seq + sent, t0 + sent, ["temp", "hum"], rows,
                                    period_ms=1000, anomalies=marks))
        info = client.publish(f"{prefix}/{device}/data", payload, qos=1)
        info.wait_for_publish(10)
        sent += count
    return sent


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
