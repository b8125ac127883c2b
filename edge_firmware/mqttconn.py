# Connect-time half of the MQTT client: CONNECT/CONNACK and SUBSCRIBE/SUBACK.
#
# Loaded by MQTTClient.connect()/subscribe() and dropped right after, so the
# code that runs once per (re)connect does not sit in RAM between connects.
import select
import socket
import struct

from micropython import const
from mqtt import MQTTError, _put_str, _varlen

_CONNECT = const(0x10)
_CONNACK = const(0x20)
_SUBSCRIBE = const(0x82)
_ETIMEDOUT = const(110)
_ECONNABORTED = const(103)
_EPROTO = const(71)

# CONNACK return codes 0..5, one string (one object) split when needed
_REASONS = ("accepted|bad protocol version|client id rejected|server unavailable|"
            "bad user name or password|not authorized")


def connect(c, clean_session=False):
    """Open the socket, send CONNECT, wait for CONNACK; return session_present."""
    c.close()
    addr = socket.getaddrinfo(c.server, c.port, 0, socket.SOCK_STREAM)[0][-1]
    sock = socket.socket()
    c.sock = sock
    sock.settimeout(c.timeout_ms / 1000)
    try:  # noqa: SIM105
        sock.setsockopt(6, 1, 1)  # IPPROTO_TCP, TCP_NODELAY: no 40 ms Nagle stall per ack
    except (OSError, AttributeError):
        pass
    sock.connect(addr)
    if c.tls:
        c.sock = __import__("tlsconn").wrap(sock, c.server)
    c._poller = select.poll()
    c._poller.register(c.sock, select.POLLIN)
    # Fixed header, variable header, client id and (with a will) the will
    # topic and message length go to one buffer (the client's, or for a long
    # client id or will topic one of its own); the will message, the user name
    # block (_tail) and the password follow in their own writes.
    body = 10 + 2 + len(c.client_id) + len(c._tail)
    flags = 0x02 if clean_session else 0
    will = c.will
    if will:
        body += 2 + len(will[0]) + 2 + len(will[1])
        flags |= 0x04 | (will[3] & 3) << 3 | (0x20 if will[2] else 0)
    if c.user is not None:
        flags |= 0x80
    if c.password is not None:
        body += len(c.password)
        flags |= 0x40
    n = 24 + len(c.client_id) + (len(will[0]) if will else 0)
    buf = c._obuf if n <= len(c._obuf) else bytearray(n)
    buf[0] = _CONNECT
    off = _varlen(buf, 1, body)
    off = _put_str(buf, off, b"MQTT")
    buf[off] = 4  # protocol level 3.1.1
    buf[off + 1] = flags
    struct.pack_into("!H", buf, off + 2, c.keepalive)
    off = _put_str(buf, off + 4, c.client_id)
    if will:
        off = _put_str(buf, off, will[0])
        buf[off] = len(will[1]) >> 8
        buf[off + 1] = len(will[1]) & 0xFF
        off += 2
    c._write(buf, off)
    if will:
        c._write(will[1])
    if c._tail:
        c._write(c._tail)
    if c.password is not None:
        c._write(c.password)
    kind = c._read_into(None, 1)
    if kind != _CONNACK or c._read_into(None, 1) != 2:
        raise MQTTError(_EPROTO, "expected CONNACK, got 0x%02x" % kind)
    c._read_into(c._rmv, 2)
    code = c._rbuf[1]
    if code:
        reason = _REASONS.split("|")[code] if code < 6 else "code %d" % code
        raise MQTTError(_EPROTO, "connection refused: %s" % reason)
    c._ping_sent = 0
    return bool(c._rbuf[0] & 1)


def subscribe(c, topics, qos=1):
    """Subscribe to a list of topic filters in one packet; wait for the SUBACK."""
    if c.sock is None:
        raise OSError(_ECONNABORTED)
    pid = c.next_pid()
    body = 2
    for t in topics:
        body += 2 + len(t) + 1
    buf = c._obuf if body + 5 <= len(c._obuf) else bytearray(body + 5)
    buf[0] = _SUBSCRIBE
    off = _varlen(buf, 1, body)
    struct.pack_into("!H", buf, off, pid)
    off += 2
    for t in topics:
        off = _put_str(buf, off, t.encode() if isinstance(t, str) else t)
        buf[off] = qos
        off += 1
    c._write(buf, off)
    if not c._wait_ack(pid, c.timeout_ms):
        raise OSError(_ETIMEDOUT)
    if c._suback_failed:
        raise MQTTError(_EPROTO, "subscription refused")
