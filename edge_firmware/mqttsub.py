# SUBSCRIBE/SUBACK of the MQTT client (mqtt.py), loaded by Agent.connect()
# after the connect-time module (mqttconn.py) is dropped: the two never share
# the heap (the first connect is one of the tightest moments at the 32 KB cap).
import struct

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

