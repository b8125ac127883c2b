"""A fast reader for the common binary v1 batch; anything unusual goes to the shared codec.

``shared.codec.decode_payload`` is the definition of a valid payload; it is
written to run on MicroPython too, so it checks value by value. Here the
channel section of each payload (each name with the descriptor byte before it:
value code << 4 | name length - 1) is looked up in a cache of sections the
codec has already accepted, and all values are unpacked with one
``struct.unpack_from`` call using a format cached per section and record count
(``>fff...`` when every channel is float32, ``>hhf...`` when some channels are
int16 counts of 10**scale units). Whenever this reader is unsure it returns None
and the caller decodes with the codec, which either accepts the payload or
raises the exact error; tests check with hypothesis that whatever this reader
accepts the codec accepts with the same content.
"""

from __future__ import annotations

import struct

_HEAD = struct.Struct(">III")
_U32_BE = struct.Struct(">I")
_U32 = 0xFFFFFFFF
_INF = float("inf")
_NINF = -_INF
_NAN = float("nan")
_INT16_MISSING = -32768  # shared.codec.INT16_MISSING
_MAX_CACHE = 4096


class Layout:
    """What a known channel section says: names, value codes and how to unpack n records."""

    __slots__ = ("channels", "codes", "float32", "record", "record_size", "scaled", "structs")

    def __init__(self, channels: tuple[str, ...], codes: tuple[int, ...]) -> None:
        self.channels = channels
        self.codes = codes
        self.float32 = not any(codes)  # values are the storage format: store by slicing
        self.record = "".join("h" if c else "f" for c in codes)
        self.record_size = sum(2 if c else 4 for c in codes)
        # (channel index, divisor, multiplier): the codec's int16 -> float conversion, which
        # divides by an exact power of ten for negative scales (2153 at -2 is exactly 21.53)
        self.scaled = tuple((j, 10 ** (8 - c) if c < 8 else 0, 10 ** (c - 8))
                            for j, c in enumerate(codes) if c)
        self.structs: dict[int, struct.Struct] = {}  # record count -> all values of a payload

    def unpacker(self, n: int) -> struct.Struct:
        s = self.structs.get(n)
        if s is None:
            fmt = f">{len(self.codes) * n}f" if self.float32 else ">" + self.record * n
            s = self.structs[n] = struct.Struct(fmt)
        return s


class Fast:
    """The fields of a decoded binary batch, values flat (record-major), NaN = missing.

    ``float32``: every channel is float32 on the wire, so the payload's last
    ``4 * channels * n`` bytes are the stored form of the values.
    """

    __slots__ = ("anomalies", "boot", "channels", "float32", "n", "period_ms", "seq", "t",
                 "values", "values_offset")

    def __init__(self, boot: int, seq: int, t: int, period_ms: int | None,
                 channels: tuple[str, ...], anomalies: tuple[int, ...], n: int,
                 values: tuple[float, ...], values_offset: int, float32: bool = True) -> None:
        self.boot = boot
        self.seq = seq
        self.t = t
        self.period_ms = period_ms
        self.channels = channels
        self.anomalies = anomalies
        self.n = n
        self.values = values
        self.values_offset = values_offset
        self.float32 = float32


def _section_end(payload: bytes, off: int, nch: int) -> int | None:
    """Offset just past the channel section starting at ``off``, or None if it overruns."""
    size = len(payload)
    for _ in range(nch):
        if off >= size:
            return None
        off += 2 + (payload[off] & 0x0F)
    return off if off <= size else None


class FastBinary:
    def __init__(self) -> None:
        # channel section bytes (descriptor bytes and names) -> layout the codec accepted
        self.known: dict[bytes, Layout] = {}

    def learn(self, payload: bytes, channels: tuple[str, ...]) -> Layout | None:
        """Remember the channel section of a payload the codec accepted; return its layout
        (None when the payload is not a binary batch)."""
        size = len(payload)
        if size < 16 or payload[0] != 1 or len(channels) != payload[2]:
            return None
        start = 20 if payload[1] & 1 else 16
        end = _section_end(payload, start, payload[2])
        if end is None:
            return None
        section = bytes(payload[start:end])
        layout = self.known.get(section)
        if layout is None:
            codes: list[int] = []
            off = start
            for _ in channels:
                codes.append(payload[off] >> 4)
                off += 2 + (payload[off] & 0x0F)
            layout = Layout(channels, tuple(codes))
            if len(self.known) < _MAX_CACHE:
                self.known[section] = layout
        return layout

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
        end = _section_end(payload, off, nch)
        if end is None:
            return None
        layout = self.known.get(payload[start:end])
        if layout is None:
            return None
        off = end
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
        if size != off + layout.record_size * n:
            return None
        boot, seq, t = _HEAD.unpack_from(payload, 4)
        if seq + n - 1 > _U32:
            return None
        values = layout.unpacker(n).unpack_from(payload, off)
        if _INF in values or _NINF in values:
            return None  # the codec names the offending value
        if layout.scaled:
            out = list(values)
            for j, div, mul in layout.scaled:
                col = values[j::nch]
                if _INT16_MISSING in col:
                    if div:
                        out[j::nch] = [_NAN if r == _INT16_MISSING else r / div for r in col]
                    else:
                        out[j::nch] = [_NAN if r == _INT16_MISSING else float(r * mul)
                                       for r in col]
                elif div:
                    out[j::nch] = [r / div for r in col]
                else:
                    out[j::nch] = [float(r * mul) for r in col]
            values = tuple(out)
        return Fast(boot, seq, t, period, layout.channels, anomalies, n, values, off,
                    layout.float32)
