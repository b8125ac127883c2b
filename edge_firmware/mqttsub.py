# SUBSCRIBE/SUBACK of the MQTT client (mqtt.py), loaded by Agent.connect()
# after the connect-time module (mqttconn.py) is dropped: the two never share
# the heap (the first connect is one of the tightest moments at the 32 KB cap).
# connect() does both for a caller with RAM to spare (the OTA receiver, tests).
# DISCONNECT and draining an oversized PUBLISH are here too: the client's rare
# packets stay out of resident RAM.
import struct
import sys

from micropython import const
from mqtt import _put_str, _varlen

_SUBSCRIBE = const(0x82)
_ETIMEDOUT = const(110)
_ECONNABORTED = const(103)
_EPROTO = const(71)


def subscribe(c, topics, qos=1):
    """Subscribe to a list of topic filters in one packet; wait for the SUBACK."""
    if c.sock is None:
        raise OSError(_ECONNABORTED)
    c.pid = pid = c.pid % 65535 + 1  # the next packet id (as mqtt.publish)
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
    if c._got == 2:
        raise OSError(_EPROTO, "subscription refused")


def connect(c, clean_session=False, topics=None, qos=1):
    """Open the socket (mqttsock.py), CONNECT (mqttconn.py; each dropped after),
    SUBSCRIBE to ``topics`` when given; return session_present."""
    __import__("mqttsock").open(c)
    sys.modules.pop("mqttsock", None)
    present = __import__("mqttconn").connect(c, clean_session)
    sys.modules.pop("mqttconn", None)
    if topics:
        subscribe(c, topics, qos)
    return present


def disconnect(c):
    """Clean DISCONNECT, then the socket closed: the broker discards the last will."""
    if c.sock is not None:
        try:  # noqa: SIM105
            c._write(b"\xe0\x00")
        except OSError:
            pass
    c.close()


def drain(c, n):
    """An incoming PUBLISH of ``n`` bytes, too large for the receive buffer: read
    the first piece (topic, packet id), drain the rest in buffer-sized pieces,
    count it; return its packet id (mqtt.py acknowledges it)."""
    buf = c._rbuf
    k = len(buf)
    c._read_into(c._rmv, k)
    tlen = buf[0] << 8 | buf[1]
    pid = buf[2 + tlen] << 8 | buf[3 + tlen] if 4 + tlen <= k else 0
    left = n - k
    while left:
        k = min(left, len(buf))
        c._read_into(c._rmv, k)
        left -= k
    c.oversized += 1
    return pid
