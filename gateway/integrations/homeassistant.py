"""Home Assistant MQTT discovery: every device's channels and anomaly score, by themselves.

Opt-in (``[homeassistant] enabled = true``). For each device the gateway knows,
it publishes retained discovery configs under
``<discovery_prefix>/sensor/learnae_<gateway>_<device>/<channel>/config`` (one
sensor per channel, one for the anomaly score) and
``<discovery_prefix>/binary_sensor/.../anomaly/config`` and ``.../anomaly_event/config``
(a problem sensor, ON while the gateway's detector has an open anomaly event for the
device, one per incident: see ``GET /api/devices/{id}/anomalies``). All of them read one
retained state document the gateway publishes every ``state_interval_s`` on
``<state_prefix>/<gateway>/<device>/state``::

    {"ts": 1700000000.0, "online": true, "values": {"temp": 21.5, "hum": 40.1},
     "anomaly": false, "anomaly_score": 0.8, "model_version": 12, "anomaly_event": false}

``anomaly`` is the device's own flag on its latest reading; ``anomaly_score`` is
the gateway's forecaster score of the latest reading (null until a model exists).
Availability follows the device's retained status topic (birth/last will), so
Home Assistant marks a device unavailable when it drops off.
The state documents live outside ``<topic_prefix>/`` so device ACLs never grant them.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter

from gateway.config import GatewayConfig
from gateway.runtime.parts import PeriodicPart
from shared.topics import topic

log = logging.getLogger("learnae.homeassistant")

# channel name -> (device_class, unit); unknown channels get neither
CHANNEL_CLASSES: dict[str, tuple[str | None, str | None]] = {
    "temp": ("temperature", "°C"),
    "t": ("temperature", "°C"),
    "cpu_temp": ("temperature", "°C"),
    "hum": ("humidity", "%"),
    "rh": ("humidity", "%"),
    "ah": (None, "g/m³"),
    "press": ("pressure", "hPa"),
    "co_gt": ("carbon_monoxide", "mg/m³"),
    "no2_gt": ("nitrogen_dioxide", "µg/m³"),
    "nox_gt": (None, "ppb"),
    "c6h6_gt": (None, "µg/m³"),
}
_SAFE = re.compile(r"[^a-zA-Z0-9_-]")

Publish = Callable[[str, bytes], None]


def node_id(gateway: str, device: str) -> str:
    return _SAFE.sub("_", f"learnae_{gateway}_{device}")


def state_topic(config: GatewayConfig, device: str) -> str:
    ha = config.homeassistant
    return f"{ha.state_prefix}/{config.gateway.id}/{device}/state"


def discovery_messages(config: GatewayConfig, device: str, channels: list[str],
                       firmware: str | None = None) -> dict[str, dict[str, Any]]:
    """Topic -> discovery config for one device (pure; tests check it exactly)."""
    gateway = config.gateway.id
    prefix = config.homeassistant.discovery_prefix
    node = node_id(gateway, device)
    common = {
        "state_topic": state_topic(config, device),
        "availability_topic": topic(config.mqtt.topic_prefix, device, "status"),
        "availability_template": "{{ 'online' if value_json.state == 'online' else 'offline' }}",
        "device": {
            "identifiers": [node],
            "name": f"{device} ({gateway})",
            "manufacturer": "LEARNAE edge",
            "model": "sensor board",
            "sw_version": firmware or "unknown",
        },
        "origin": {"name": "learnae-gateway"},
    }
    out: dict[str, dict[str, Any]] = {}
    for channel in channels:
        device_class, unit = CHANNEL_CLASSES.get(channel, (None, None))
        doc = dict(common, name=channel, unique_id=f"{node}_{channel}",
                   object_id=f"{node}_{channel}", state_class="measurement",
                   value_template="{{ value_json['values']['" + channel + "'] }}")
        if device_class:
            doc["device_class"] = device_class
        if unit:
            doc["unit_of_measurement"] = unit
        out[f"{prefix}/sensor/{node}/{channel}/config"] = doc
    out[f"{prefix}/sensor/{node}/anomaly_score/config"] = dict(
        common, name="anomaly score", unique_id=f"{node}_anomaly_score",
        object_id=f"{node}_anomaly_score", state_class="measurement",
        value_template="{{ value_json.anomaly_score }}", icon="mdi:chart-bell-curve",
    )
    out[f"{prefix}/binary_sensor/{node}/anomaly/config"] = dict(
        common, name="anomaly", unique_id=f"{node}_anomaly", object_id=f"{node}_anomaly",
        device_class="problem",
        value_template="{{ 'ON' if value_json.anomaly else 'OFF' }}",
    )
    out[f"{prefix}/binary_sensor/{node}/anomaly_event/config"] = dict(
        common, name="anomaly event", unique_id=f"{node}_anomaly_event",
        object_id=f"{node}_anomaly_event", device_class="problem",
        value_template="{{ 'ON' if value_json.anomaly_event else 'OFF' }}",
    )
    return out


class AnomalyScorer:
    """Score a device's latest reading with its latest forecaster from the registry."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self._models: dict[str, tuple[int, Any]] = {}

    def score(self, store: Any, device: str) -> tuple[float | None, int | None]:
        try:
            from gateway.learning.forecast import ForecastModel
            from gateway.learning.registry import ModelRegistry
        except ImportError:
            return None, None
        with ModelRegistry(self.config.db_path) as registry:
            latest = registry.current(device)  # the promoted version
            if latest is None:
                return None, None
            cached = self._models.get(device)
            if cached is None or cached[0] != latest.version:
                cached = (latest.version,
                          ForecastModel.from_metadata(latest.metadata, latest.weights))
                self._models[device] = cached
        version, model = cached
        # enough readings for a few windows at the model's period
        series = store.read_series(device, limit=max(64, model.window * 8))
        if not len(series):
            return None, version
        import numpy as np

        index = [series.channels.index(c) if c in series.channels else -1
                 for c in model.channels]
        values = np.full((len(series), len(model.channels)), np.nan)
        for j, i in enumerate(index):
            if i >= 0:
                values[:, j] = series.values[:, i]
        _times, scores = model.score_series(series.ts, values)
        if len(scores) == 0:
            return None, version
        return round(float(scores[-1]), 4), version


class HomeAssistantBridge(PeriodicPart):
    """Publishes discovery configs (once per device and channel set) and state documents."""

    thread_name = "homeassistant"

    def __init__(self, config: GatewayConfig, publish: Publish, *,
                 registry: CollectorRegistry | None = None) -> None:
        self.config = config
        self._publish = publish
        self._announced: dict[str, tuple[str, ...]] = {}
        super().__init__(log)
        self._scorer = AnomalyScorer(config)
        reg = REGISTRY if registry is None else registry
        self.published = Counter("learnae_homeassistant_messages",
                                 "Messages published for Home Assistant, by kind", ["kind"],
                                 registry=reg)

    # what a PeriodicPart asks of each part (the anomaly monitor answers the same two)
    def run_pass(self) -> int:
        return self.publish_once()

    def interval_s(self) -> float:
        return self.config.homeassistant.state_interval_s

    def publish_once(self) -> int:
        """Announce new devices/channels and publish every device's state; returns messages."""
        from gateway.store import Store

        sent = 0
        with Store.open(self.config.db_path, readonly=True) as store:
            for info in store.devices():
                latest = store.samples(info.id, limit=1)
                if not latest:
                    continue
                sample = latest[0]
                channels = tuple(sample.values)
                if self._announced.get(info.id) != channels:
                    for name, doc in discovery_messages(self.config, info.id, list(channels),
                                                        info.firmware).items():
                        self._send(name, doc, "discovery")
                        sent += 1
                    self._announced[info.id] = channels
                try:
                    score, version = self._scorer.score(store, info.id)
                except Exception:
                    log.exception("anomaly score of %s failed", info.id)
                    score, version = None, None
                state = {"ts": sample.ts, "online": info.online, "values": sample.values,
                         "anomaly": sample.anomaly, "anomaly_score": score,
                         "model_version": version,
                         "anomaly_event": self._event_open(info.id)}
                self._send(state_topic(self.config, info.id), state, "state")
                sent += 1
        return sent

    def _event_open(self, device: str) -> bool:
        """True while the gateway's detector has an open anomaly event for ``device``."""
        from gateway.store.anomaly_events import AnomalyEventLog

        try:
            with AnomalyEventLog.open(self.config.db_path, readonly=True) as events:
                return events.has_open(device)
        except Exception:
            log.exception("reading the anomaly events of %s failed", device)
            return False

    def _send(self, name: str, doc: dict[str, Any], kind: str) -> None:
        self._publish(name, json.dumps(doc, separators=(",", ":")).encode())
        self.published.labels(kind).inc()
