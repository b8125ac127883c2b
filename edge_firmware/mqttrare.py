# The MQTT client's rare steps (mqtt.py), each loaded for the call only: the
# text of a refused CONNECT, DISCONNECT, draining an incoming PUBLISH too
# large for the receive buffer, and connect(): socket, CONNECT and SUBSCRIBE in
# one call for a caller with RAM to spare (the OTA receiver, tests; the agent
# loads those modules one at a time). Out of mqtt.py and the connect-time
# modules, which stay small.
import sys

# CONNACK return codes 0..5, one string (one object) split when needed
_REASONS = ("accepted|bad protocol version|client id rejected|server unavailable|"
            "bad user name or password|not authorized")


def refused(code):
    """The reason a broker refused a CONNECT with return ``code``."""
    return _REASONS.split("|")[code] if code < 6 else "code %d" % code


def connect(c, clean_session=False, topics=None, qos=1):
    """Open the socket (mqttsock.py), CONNECT (mqttconn.py; each dropped after),
    SUBSCRIBE to ``topics`` when given; return session_present.

    A collection before each step: the allocator's search then starts again
    from the lowest free block, so the small blocks of a step's code and
    objects fill the holes the steps before left instead of splitting the one
    large free run (without it, loading mqttconn.py in the OTA receiver failed
    to get a 199-byte block at a 32 or 33 KB heap, depending on the layout)."""
    __import__("gc").collect()
    __import__("mqttsock").open(c)
    sys.modules.pop("mqttsock", None)
    __import__("gc").collect()
    present = __import__("mqttconn").connect(c, clean_session)
    sys.modules.pop("mqttconn", None)
    if topics:
        __import__("mqttsub").subscribe(c, topics, qos)
        sys.modules.pop("mqttsub", None)
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
