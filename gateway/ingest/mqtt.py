"""The gateway's MQTT client: paho 2.x, persistent session, manual acknowledgement.

The session survives gateway restarts (MQTT v5 session expiry, or
clean_session=False on 3.1.1), so messages published while the gateway is
down, and messages it received but never acked, are delivered again.
Acks from a previous connection are dropped (``generation``): the broker
redelivers those messages on the new connection and the store's
(device, boot, seq) key makes the second copy a counted duplicate.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.config import MqttSection

log = logging.getLogger("gateway.ingest.mqtt")

MessageFn = Callable[[int, int, str, bytes, float, int, bool], None]


class MqttError(RuntimeError):
    """The MQTT client could not be set up or the broker refused it."""


class MqttSource:
    def __init__(self, section: MqttSection, *, client_id: str, subscriptions: list[str],
                 on_message: MessageFn, receive_maximum: int = 1000,
                 on_state: Callable[[bool], None] | None = None) -> None:
        self.section = section
        self.subscriptions = subscriptions
        self._deliver = on_message
        self._on_state = on_state
        self.receive_maximum = receive_maximum
        self.generation = 0
        self.connected = threading.Event()
        self.last_error: str | None = None
        self.v5 = section.protocol == "5"
        try:
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=client_id,
                protocol=mqtt.MQTTv5 if self.v5 else mqtt.MQTTv311,
                clean_session=None if self.v5 else False,
                manual_ack=True,
            )
            if section.username is not None:
                client.username_pw_set(section.username, section.password)
            if section.tls_ca or section.tls_cert:
                client.tls_set(
                    ca_certs=str(section.tls_ca) if section.tls_ca else None,
                    certfile=str(section.tls_cert) if section.tls_cert else None,
                    keyfile=str(section.tls_key) if section.tls_key else None,
                    tls_version=ssl.PROTOCOL_TLS_CLIENT,
                )
        except (ValueError, OSError, ssl.SSLError) as exc:
            raise MqttError(f"cannot set up MQTT client {client_id!r}: {exc}") from exc
        client.max_queued_messages_set(0)
        client.reconnect_delay_set(0.1, 2.0)  # type: ignore[arg-type]  # floats work: sleep()
        client.on_connect = self._connected
        client.on_disconnect = self._disconnected
        client.on_subscribe = self._subscribed
        client.on_message = self._message
        self.client = client
        self._paused = False

    # ------------------------------------------------------------ lifecycle
    def start(self, wait_s: float = 5.0) -> bool:
        """Connect in the background; return whether the first subscription completed
        within ``wait_s`` (the client keeps retrying either way)."""
        s = self.section
        try:
            if self.v5:
                props = Properties(PacketTypes.CONNECT)
                props.SessionExpiryInterval = s.session_expiry_s
                props.ReceiveMaximum = max(1, min(self.receive_maximum, 65535))
                self.client.connect_async(s.host, s.port, keepalive=s.keepalive_s,
                                          clean_start=False, properties=props)
            else:
                self.client.connect_async(s.host, s.port, keepalive=s.keepalive_s)
        except (ValueError, OSError) as exc:
            raise MqttError(f"cannot connect to {s.host}:{s.port}: {exc}") from exc
        self.client.loop_start()
        return self.connected.wait(wait_s)

    def pause(self) -> None:
        """Stop taking messages (they stay unacked and will be redelivered)."""
        self._paused = True

    def stop(self) -> None:
        self._paused = True
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()
        self.connected.clear()

    # ------------------------------------------------------------ use
    def ack(self, mid: int, qos: int, generation: int) -> None:
        if generation == self.generation:
            self.client.ack(mid, qos)

    def publish_retained(self, topic: str, payload: bytes, qos: int = 1) -> None:
        info = self.client.publish(topic, payload, qos=qos, retain=True)
        if info.rc != mqtt.MQTT_ERR_SUCCESS and info.rc != mqtt.MQTT_ERR_NO_CONN:
            raise MqttError(f"publishing to {topic!r} failed: {mqtt.error_string(info.rc)}")

    # ------------------------------------------------------------ paho callbacks
    def _connected(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                   properties: Any) -> None:
        if reason.is_failure:
            self.last_error = f"broker refused the connection: {reason}"
            log.error("%s", self.last_error)
            return
        self.generation += 1
        log.info("connected to %s:%d (session present: %s)", self.section.host,
                 self.section.port, getattr(flags, "session_present", None))
        client.subscribe([(sub, 1) for sub in self.subscriptions])

    def _subscribed(self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any,
                    properties: Any) -> None:
        bad = [r for r in reasons if getattr(r, "is_failure", False)]
        if bad:
            self.last_error = f"subscription refused: {bad}"
            log.error("%s", self.last_error)
            return
        self.last_error = None
        self.connected.set()
        if self._on_state:
            self._on_state(True)

    def _disconnected(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                      properties: Any) -> None:
        self.generation += 1  # anything still in hand from that connection must not be acked
        self.connected.clear()
        if self._on_state:
            self._on_state(False)
        if not self._paused:
            log.warning("disconnected from broker: %s; reconnecting", reason)

    def _message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if self._paused:
            return
        self._deliver(msg.mid, msg.qos, msg.topic, msg.payload, time.time(), self.generation,
                      msg.retain)
