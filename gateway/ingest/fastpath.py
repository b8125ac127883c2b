"""A fast reader for the common binary v1 batch; anything unusual goes to the shared codec.

``shared.codec.decode_payload`` is the definition of a valid payload; it is
written to run on MicroPython too, so it checks value by value. Here the
channel-name section of each payload is looked up in a cache of sections the
codec has already accepted, and all values are unpacked with one
``struct.unpack_from`` call. Whenever this reader is unsure it returns None and
the caller decodes with the codec, which either accepts the payload or raises
the exact error; tests check with hypothesis that whatever this reader accepts
the codec accepts with the same content.
"""

from __future__ import annotations

import struct

_HEAD = struct.Struct(">III")
_U32_BE = struct.Struct(">I")
_U32 = 0xFFFFFFFF
_INF = float("inf")
_NINF = -_INF
_MAX_CACHE = 4096


class Fast:
    """The fields of a decoded binary batch, values flat (record-major), NaN = missing."""

    __slots__ = ("anomalies", "boot", "channels", "n", "period_ms", "seq", "t", "values",
                 "values_offset")

    def __init__(self, boot: int, seq: int, t: int, period_ms: int | None,
                 channels: tuple[str, ...], anomalies: tuple[int, ...], n: int,
                 values: tuple[float, ...], values_offset: int) -> None:
        self.boot = boot
        self.seq = seq
        self.t = t
        self.period_ms = period_ms
        self.channels = channels
        self.anomalies = anomalies
        self.n = n
        self.values = values
        self.values_offset = values_offset


class FastBinary:
    def __init__(self) -> None:
        # channel-name section bytes -> channel names the codec accepted
        self.known: dict[bytes, tuple[str, ...]] = {}

    def learn(self, payload: bytes, channels: tuple[str, ...]) -> None:
        """Remember the name section of a payload the codec accepted."""
        section = self._section(payload)
        if section is not None and len(self.known) < _MAX_CACHE:
            self.known[section] = channels

    @staticmethod
    def _section(payload: bytes) -> bytes | None:
        size = len(payload)
        if size < 16 or payload[0] != 1:
            return None
        off = 20 if payload[1] & 1 else 16
        start = off
        for _ in range(payload[2]):
            if off >= size:
                return None
            off += 1 + payload[off]
        if off > size:
            return None
        return bytes(payload[start:off])

    def read(self, payload: bytes) -> Fast | None:
        size = len(payload)
        if size < 16 or payload[0] != 1:
            return None
        flags, nch, n = payload[1], payload[2], payload[3]
        if flags & ~3 or not 1 <= nch <= 16 or n < 1:
            return None
        off = 16
        period = None
        if flags & 1:
            if size < 20:
                return None
            period = _U32_BE.unpack_from(payload, 16)[0]
            off = 20
        start = off
        for _ in range(nch):
            if off >= size:
                return None
            off += 1 + payload[off]
        if off > size:
            return None
        channels = self.known.get(payload[start:off])
        if channels is None:
            return None
        anomalies: tuple[int, ...] = ()
        if flags & 2:
            nbytes = (n + 7) >> 3
            if off + nbytes > size:
                return None
            bitmap = payload[off:off + nbytes]
            if n & 7 and bitmap[-1] >> (n & 7):
                return None
            anomalies = tuple(k for k in range(n) if bitmap[k >> 3] & (1 << (k & 7)))
            off += nbytes
        count = nch * n
        if size != off + 4 * count:
            return None
        boot, seq, t = _HEAD.unpack_from(payload, 4)
        if seq + n - 1 > _U32:
            return None
        values = struct.unpack_from(f">{count}f", payload, off)
        if _INF in values or _NINF in values:
            return None  # the codec names the offending value
        return Fast(boot, seq, t, period, channels, anomalies, n, values, off)
