# Connect-time part of the MQTT client: CONNECT/CONNACK. The socket is
# mqttsock.py's, SUBSCRIBE/SUBACK mqttsub.py's: each loaded by Agent.connect()
# (or mqttrare.connect) after the one before is dropped, so the code that runs
# once per (re)connect does not sit in RAM between connects, and the three
# never share the heap (the first connect was the tightest moment at 32 KB).
# Every wait here feeds the watchdog (c.wdt) at least every c.slice_ms.
import struct

from micropython import const
from mqtt import _put_str, _varlen

_CONNECT = const(0x10)
_CONNACK = const(0x20)
_ETIMEDOUT = const(110)
_EPROTO = const(71)

def connect(c, clean_session=False):
    """Send CONNECT on the socket mqttsock.open() made, wait for CONNACK;
    return session_present."""
    _hello(c, _flags(c, clean_session))
    _connack(c)
    c._ping_sent = 0
    return bool(c._rbuf[0] & 1)


# connect() in three functions: each function's bytecode is one block on the
# heap, and the connect-time module loads into a heap fragmented by the
# construction (a 272-byte block was the first to fail at the 32 KB cap)
def _flags(c, clean_session):
    """The CONNECT flags byte (will, QoS, retain, user name, password)."""
    flags = 0x02 if clean_session else 0
    password, will, tail = c.conn[3], c.conn[5], c.conn[6]  # (mqttinit.settings)
    if will:
        flags |= 0x04 | (will[3] & 3) << 3 | (0x20 if will[2] else 0)
    if len(tail) > (2 if password is not None else 0):  # a user name
        flags |= 0x80
    if password is not None:
        flags |= 0x40
    return flags


def _hello(c, flags):
    """Send CONNECT."""
    # Fixed header, variable header, client id and (with a will) the will
    # topic and message length go to one buffer (the client's, or for a long
    # client id or will topic one of its own); the will message, the user name
    # block (tail) and the password follow in their own writes.
    client_id, password, will, tail = c.conn[0], c.conn[3], c.conn[5], c.conn[6]
    body = 10 + 2 + len(client_id) + len(tail)
    if will:
        body += 2 + len(will[0]) + 2 + len(will[1])
    if password is not None:
        body += len(password)
    n = 24 + len(client_id) + (len(will[0]) if will else 0)
    buf = c._obuf if n <= len(c._obuf) else bytearray(n)
    buf[0] = _CONNECT
    off = _varlen(buf, 1, body)
    off = _put_str(buf, off, b"MQTT")
    buf[off] = 4  # protocol level 3.1.1
    buf[off + 1] = flags
    struct.pack_into("!H", buf, off + 2, c.keepalive)
    off = _put_str(buf, off + 4, client_id)
    if will:
        off = _put_str(buf, off, will[0])
        buf[off] = len(will[1]) >> 8
        buf[off + 1] = len(will[1]) & 0xFF
        off += 2
    c._write(buf, off)
    if will:
        c._write(will[1])
    if tail:
        c._write(tail)
    if password is not None:
        c._write(password)


def _connack(c):
    """Wait for the CONNACK (slice_ms at a time, feeding the watchdog; never
    longer than timeout_ms in all) and check it."""
    waited = 0  # the CONNACK wait: slice_ms at a time (never above timeout_ms)
    while not c._poller.poll(c.slice_ms):
        if c.wdt is not None:
            c.wdt.feed()
        waited += c.slice_ms
        if waited >= c.timeout_ms:
            raise OSError(_ETIMEDOUT)
    kind = c._read_into(None, 1)
    if kind != _CONNACK or c._read_into(None, 1) != 2:
        raise OSError(_EPROTO, "expected CONNACK, got 0x%02x" % kind)
    c._read_into(c._rmv, 2)
    code = c._rbuf[1]
    if code:  # (the reasons' text is in mqttrare.py: rare, and RAM here)
        raise OSError(_EPROTO, "connection refused: %s" % __import__("mqttrare").refused(code))
