"""Time from the gateway: boards on a LAN without Internet get their clock here.

A board publishes an online status when it connects and every
``status_every_s``; each one (live, not a retained copy) is answered with
``{"cmd": "time", "t": <Unix seconds>}`` on the board's own command topic
``<prefix>/<device>/cmd`` (QoS 1, not retained: a retained time would be as
old as its message). The board sets its RTC from it and reports the drift in
status (``link.clock_drift_s``); until its clock is set its readings go out
with ``t = 0`` and the ingest stamps them on arrival. The answer rides the
command topic, which boards already subscribe to, so it costs a board no RAM
for a subscription of its own (docs/protocol.md, Commands).

One small paho client of its own, beside the ingest's, so the ingest path is
untouched; answers to one device are at most one per ``min_interval_s``.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client import CollectorRegistry, Counter

from gateway.config import MqttSection
from shared.errors import ProtocolError
from shared.topics import CMD, STATUS, parse_topic, subscription, topic

log = logging.getLogger(__name__)


def time_command(now: float) -> bytes:
    """The answer a board reads (edge_firmware/inbox.py)."""
    return json.dumps({"cmd": "time", "t": int(now)}, separators=(",", ":")).encode()


class ClockMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.answered = Counter("learnae_clock_times_sent", "Time answers sent to boards",
                                registry=registry)
        self.rejected = Counter("learnae_clock_status_rejected",
                                "Status messages the clock could not read", ["reason"],
                                registry=registry)


class GatewayClock:
    """Answers every live online status with the gateway's time."""

    def __init__(self, section: MqttSection, *, client_id: str,
                 registry: CollectorRegistry | None = None, min_interval_s: float = 5.0,
                 now: Callable[[], float] = time.time) -> None:
        self.section = section
        self.prefix = section.topic_prefix
        self.min_interval_s = min_interval_s
        self.now = now
        self.metrics = ClockMetrics(registry)
        self.last_error: str | None = None
        self._sent: dict[str, float] = {}  # device -> monotonic time of the last answer
        self._lock = threading.Lock()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=mqtt.MQTTv311, clean_session=True)
        if section.username is not None:
            client.username_pw_set(section.username, section.password)
        if section.tls_ca or section.tls_cert:
            client.tls_set(ca_certs=str(section.tls_ca) if section.tls_ca else None,
                           certfile=str(section.tls_cert) if section.tls_cert else None,
                           keyfile=str(section.tls_key) if section.tls_key else None,
                           tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client.reconnect_delay_set(0.1, 2.0)  # type: ignore[arg-type]  # floats work: sleep()
        client.on_connect = self._connected
        client.on_message = self._message
        self.client = client

    def start(self) -> None:
        self.client.connect_async(self.section.host, self.section.port,
                                  keepalive=self.section.keepalive_s)
        self.client.loop_start()

    def stop(self, timeout: float = 5.0) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _connected(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                   properties: Any = None) -> None:
        client.subscribe(subscription(self.prefix, STATUS), qos=0)

    def _message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.retain or not msg.payload:
            return  # a retained status is history, not a board asking now
        device = self.answer_to(msg.topic, msg.payload)
        if device is None:
            return
        info = client.publish(topic(self.prefix, device, CMD), time_command(self.now()), qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            self.last_error = f"time to {device!r}: {mqtt.error_string(info.rc)}"
            log.warning("clock: %s", self.last_error)
            return
        self.metrics.answered.inc()

    def answer_to(self, name: str, payload: bytes) -> str | None:
        """The device a status asks the time for, or None (not online, too soon
        after the last answer, or unreadable: counted with its reason)."""
        try:
            device, _kind = parse_topic(name, self.prefix)
            doc = json.loads(payload)
        except (ProtocolError, ValueError) as exc:
            self._reject("unreadable", f"status on {name!r}: {exc}")
            return None
        if not isinstance(doc, dict):
            self._reject("not_object", f"status on {name!r} is {type(doc).__name__}, not an object")
            return None
        if doc.get("state") != "online":
            return None
        mono = time.monotonic()
        with self._lock:
            last = self._sent.get(device)
            if last is not None and mono - last < self.min_interval_s:
                return None
            self._sent[device] = mono
        return device

    def _reject(self, reason: str, detail: str) -> None:
        self.metrics.rejected.labels(reason=reason).inc()
        self.last_error = detail
        log.info("clock: %s", detail)
