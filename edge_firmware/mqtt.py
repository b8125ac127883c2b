# MQTT 3.1.1 client for the sensor agent: small, synchronous, allocation-light.
#
# One message in flight at a time (QoS 0 or 1), which keeps the state machine
# tiny: publish() writes the packet and waits for its PUBACK, resending it with
# the DUP flag when the timeout passes. Incoming packets are read into one
# preallocated buffer; the callback gets a memoryview into it and must copy
# what it keeps. Connecting is not here: mqttconn.connect (socket, CONNECT)
# and mqttsub.subscribe, each loaded for the call only (Agent.connect), or
# mqttrare.connect for all three. Every I/O fault surfaces as OSError: the caller has exactly one
# reconnect path (close(), back off, connect() again), as mqtt_as does. A
# broker that refuses (CONNACK, SUBACK) or breaks the protocol is an
# OSError(EPROTO, reason) too (no exception class of its own: a class costs
# about 160 bytes of RAM on a board, resident with this module).
import struct
import sys
import time

from micropython import const

_PUBLISH = const(0x30)
_PUBACK = const(0x40)
_SUBACK = const(0x90)
_PINGRESP = const(0xD0)
_ETIMEDOUT = const(110)
_ECONNABORTED = const(103)
_EPROTO = const(71)



def _varlen(buf, off, n):
    # Remaining Length: 7 bits per byte, high bit = more follows.
    while True:
        byte = n & 0x7F
        n >>= 7
        buf[off] = byte | 0x80 if n else byte
        off += 1
        if not n:
            return off


def _put_str(buf, off, data):
    n = len(data)
    buf[off] = n >> 8
    buf[off + 1] = n & 0xFF
    buf[off + 2:off + 2 + n] = data
    return off + 2 + n


class MQTTClient:
    # Fewer, larger methods on purpose: on a board every function object costs
    # RAM beyond its bytecode, and this class stays resident.
    def __init__(self, settings):
        # settings: mqttinit.settings(client_id, server, port=1883, ...), the
        # one-shot work done before this module loads; assigned in one step,
        # so the attribute table's outgrown copies are one free run, not holes
        # (conn: what only connecting reads, one tuple, mqttinit.settings; 22
        # attributes fit a 23-slot table, 28 took 29 slots, a 464-byte block
        # that was the allocation to fail at the 32 KB cap)
        (self.conn, self.keepalive, self.timeout_ms, self.retries, self.cb, self.sock,
         self._poller, self.pid, self._want, self._got, self._ping_sent, self._last_tx,
         self._rbuf, self._rmv, self._obuf, self._onemv, self.wdt, self.slice_ms, self.nodelay,
         self.oversized, self.resent, self.backoff_max) = settings

    # -- socket level -------------------------------------------------------
    def _write(self, data, n=-1):
        mv = memoryview(data)
        n = len(data) if n < 0 else n
        off = 0
        while off < n:
            k = self.sock.write(mv[off:n])
            if not k:
                raise OSError(_ECONNABORTED)
            off += k
        self._last_tx = time.ticks_ms()

    def _read_into(self, mv, n):
        # n = 1 with mv None: one byte, returned (the fixed header's bytes)
        one = mv is None
        if one:
            mv = self._onemv
        off = 0
        while off < n:
            k = self.sock.readinto(mv[off:n])
            if not k:  # orderly close by the peer
                raise OSError(_ECONNABORTED)
            off += k
        return self._onemv[0] if one else n

    def close(self):
        """Drop the socket without DISCONNECT (the broker sends the last will)."""
        if self.sock is not None:
            try:  # noqa: SIM105
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self._poller = None

    # -- packets out --------------------------------------------------------
    def publish(self, topic, msg, retain=False, qos=1, pid=0, dup=False):
        """Publish and, for QoS 1, wait for the PUBACK; return the packet id used.

        Pass ``pid``/``dup=True`` to resend a message whose PUBACK was lost
        before a reconnect (MQTT 3.1.1 section 4.4). Without a PUBACK within
        ``timeout_ms`` the packet goes again with DUP set, ``retries`` times,
        then OSError(ETIMEDOUT).
        """
        if self.sock is None:
            raise OSError(_ECONNABORTED)
        topic = topic.encode() if isinstance(topic, str) else topic
        if qos and not pid:  # the next packet id, 1..65535
            self.pid = pid = self.pid % 65535 + 1
        if len(topic) + 9 > len(self._obuf):  # a long topic prefix: grow once
            self._obuf = bytearray(len(topic) + 9)
        buf = self._obuf
        # msg may be a tuple of pieces, written one after the other (status.py:
        # no large block needed for one long document)
        parts = msg if isinstance(msg, tuple) else (msg,)
        n = 0
        for p in parts:
            n += len(memoryview(p))  # bytes, also for a str piece
        tries = 0
        while True:
            buf[0] = _PUBLISH | (0x08 if dup else 0) | (qos << 1) | (1 if retain else 0)
            off = _varlen(buf, 1, 2 + len(topic) + n + (2 if qos else 0))
            off = _put_str(buf, off, topic)
            if qos:
                struct.pack_into("!H", buf, off, pid)
                off += 2
            self._write(buf, off)
            for p in parts:
                self._write(p)
            if not qos:
                return 0
            if self._wait_ack(pid, self.timeout_ms):
                return pid
            tries += 1
            if tries > self.retries:
                raise OSError(_ETIMEDOUT)
            self.resent += 1
            dup = True

    def keepalive_check(self):
        """Send PINGREQ when idle; raise OSError when the broker stopped answering."""
        if self.sock is None:
            return
        now = time.ticks_ms()
        if self._ping_sent and time.ticks_diff(now, self._ping_sent) > self.timeout_ms:
            raise OSError(_ETIMEDOUT)
        if not self._ping_sent and time.ticks_diff(now, self._last_tx) > self.keepalive * 500:
            self._write(b"\xc0\x00")  # PINGREQ
            self._ping_sent = time.ticks_ms() or 1

    # -- packets in ---------------------------------------------------------
    def _wait_ack(self, pid, timeout_ms):
        self._want = pid
        self._got = False
        start = time.ticks_ms()
        while True:
            left = timeout_ms - time.ticks_diff(time.ticks_ms(), start)
            if left <= 0:
                return False
            if self.wdt is not None:  # a PUBACK wait can outlast the watchdog
                self.wdt.feed()
            self.poll(min(left, self.slice_ms))
            if self._got:
                return True

    def poll(self, timeout_ms=0):
        """Handle every packet that arrives within ``timeout_ms``; return how many."""
        if self.sock is None:
            raise OSError(_ECONNABORTED)
        count = 0
        while self._poller.poll(timeout_ms):
            self._read_packet()
            count += 1
            timeout_ms = 0
        return count

    def _read_packet(self):
        kind = self._read_into(None, 1)
        n = 0
        shift = 0
        while True:
            b = self._read_into(None, 1)
            n |= (b & 0x7F) << shift
            if not b & 0x80:
                break
            shift += 7
            if shift > 21:
                raise OSError(_EPROTO, "bad remaining length")
        head = kind & 0xF0
        buf = self._rbuf
        if head == _PUBLISH:
            qos = (kind >> 1) & 3
            if n > len(buf):
                # too large to keep (rare: the code is in mqttrare.py): read off,
                # counted, acknowledged below
                pid = __import__("mqttrare").drain(self, n)
                sys.modules.pop("mqttrare", None)
                if self.cb:
                    self.cb(None, n, bool(kind & 1))
            else:
                self._read_into(self._rmv, n)
                tlen = buf[0] << 8 | buf[1]
                off = 2 + tlen
                if off > n:
                    raise OSError(_EPROTO, "PUBLISH topic overruns packet")
                pid = 0
                if qos:
                    pid = buf[off] << 8 | buf[off + 1]
                    off += 2
                if self.cb:
                    self.cb(self._rmv[2:2 + tlen], self._rmv[off:n], bool(kind & 1))
            if qos == 1:  # PUBACK
                self._obuf[0] = _PUBACK
                self._obuf[1] = 2
                self._obuf[2] = pid >> 8
                self._obuf[3] = pid & 0xFF
                self._write(self._obuf, 4)
            return
        if n > len(buf):
            raise OSError(_EPROTO, "packet 0x%02x of %d bytes" % (kind, n))
        self._read_into(self._rmv, n)
        if head == _PUBACK:
            if buf[0] << 8 | buf[1] == self._want:
                self._got = True
        elif head == _SUBACK:
            if buf[0] << 8 | buf[1] == self._want:
                self._got = True
                for i in range(2, n):
                    if buf[i] & 0x80:
                        self._got = 2  # a topic refused (mqttsub.subscribe)
        elif head == _PINGRESP:
            self._ping_sent = 0
        else:
            raise OSError(_EPROTO, "unexpected packet 0x%02x" % kind)
