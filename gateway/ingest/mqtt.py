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
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.config import MqttSection
from gateway.errors import MqttError

log = logging.getLogger("gateway.ingest.mqtt")

MessageFn = Callable[[int, int, str, bytes, float, int, bool], None]


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
        client.on_connect_fail = self._connect_failed
        # paho reports a socket error after the handshake (TLS 1.3 refuses a client
        # certificate there) only to its logger; ERROR level keeps the hot path's
        # debug lines unformatted
        self._socket_error: str | None = None
        self._paho_logger = _socket_error_logger(self)
        client.enable_logger(self._paho_logger)
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
            self.client.disable_logger()
            _release_logger(self._paho_logger)
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

    def _connect_failed(self, client: mqtt.Client, userdata: Any) -> None:
        """paho calls this from inside its ``except OSError``: the error is at hand."""
        error = describe_connect_error(sys.exc_info()[1], self.section)
        if error != self.last_error:
            log.error("%s; retrying", error)
        self.last_error = error

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
        error, self._socket_error = self._socket_error, None
        if error is not None and not self._paused:
            self.last_error = describe_lost_connection(error, self.section)
            log.error("%s; reconnecting", self.last_error)
            return
        if self._on_state:
            self._on_state(False)
        if not self._paused:
            log.warning("disconnected from broker: %s; reconnecting", reason)

    def _message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if self._paused:
            return
        self._deliver(msg.mid, msg.qos, msg.topic, msg.payload, time.time(), self.generation,
                      msg.retain)


def describe_connect_error(exc: BaseException | None, section: MqttSection) -> str:
    """Why a connection attempt failed, naming the broker and, for TLS, the settings."""
    where = f"MQTT broker {section.host}:{section.port}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (f"TLS: the certificate of {where} was refused ({exc.verify_message}; "
                f"mqtt.tls_ca = {str(section.tls_ca)!r})")
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or str(exc)
        if "ALERT" in reason.upper():
            return (f"TLS: {where} refused this gateway's certificate ({reason}; "
                    f"mqtt.tls_cert = {str(section.tls_cert)!r})")
        return f"TLS handshake with {where} failed ({reason})"
    if isinstance(exc, OSError):
        return f"cannot connect to {where}: {exc.strerror or exc}"
    return f"cannot connect to {where}: {exc!r}"


def describe_lost_connection(error: str, section: MqttSection) -> str:
    """Why the broker closed the connection, from paho's socket error text."""
    where = f"MQTT broker {section.host}:{section.port}"
    if "ALERT" in error.upper():
        return (f"TLS: {where} refused this gateway's certificate ({error}; "
                f"mqtt.tls_cert = {str(section.tls_cert)!r})")
    return f"connection to {where} lost: {error}"


class _SocketErrors(logging.Handler):
    def __init__(self, source: MqttSource) -> None:
        super().__init__(logging.ERROR)
        self.source = source

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("failed to receive on socket: "):
            self.source._socket_error = message.removeprefix("failed to receive on socket: ")


def _socket_error_logger(source: MqttSource) -> logging.Logger:
    logger = logging.getLogger(f"gateway.ingest.paho.{id(source)}")
    logger.setLevel(logging.ERROR)
    logger.propagate = False
    logger.handlers[:] = [_SocketErrors(source)]
    return logger


def _release_logger(logger: logging.Logger) -> None:
    """Loggers live as long as the process unless taken out of logging's registry."""
    logger.handlers.clear()
    logging.Logger.manager.loggerDict.pop(logger.name, None)
