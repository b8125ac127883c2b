"""Batch payload codec: binary v1 (the compact default) and the JSON form.

A batch carries N records of C channels from one device boot; record i has
sequence ``seq + i``. Missing readings are ``None`` (NaN on the binary wire).
The byte layout is documented in docs/protocol.md; tests/protocol holds
golden vectors both interpreters must reproduce.
"""

import json
import struct

from shared.errors import ProtocolError

VERSION = 1
MAX_CHANNELS = 16
MAX_RECORDS = 255
MAX_NAME = 16
MAX_JSON_BYTES = 65536
U32 = 0xFFFFFFFF
FLOAT32_MAX = 3.4028234663852886e38

FLAG_PERIOD = 0x01
FLAG_ANOMALIES = 0x02
_KNOWN_FLAGS = FLAG_PERIOD | FLAG_ANOMALIES
_HEADER = ">BBBBIII"  # version, flags, channels, records, boot, seq, t
HEADER_SIZE = 16
_NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"
_JSON_KEYS = ("v", "boot", "seq", "t", "channels", "values", "period_ms", "anomalies")
INT16_MISSING = -32768  # a missing reading in an int16 channel
SCALE_MIN = -7
SCALE_MAX = 7
_NAN_BYTES = b"\x7f\xc0\x00\x00"  # canonical quiet NaN: the same bytes on every port


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _check_u32(name, x):
    if not _is_int(x):
        raise ProtocolError("%s %r is not an integer" % (name, x))
    if not 0 <= x <= U32:
        raise ProtocolError("%s %d is outside 0..4294967295" % (name, x))
    return x


def _check_channel(name):
    if not isinstance(name, str):
        raise ProtocolError("channel name %r is not a string" % (name,))
    if not 1 <= len(name) <= MAX_NAME:
        raise ProtocolError("channel name %r must be 1 to %d characters" % (name, MAX_NAME))
    for ch in name:
        if ch not in _NAME_CHARS:
            raise ProtocolError("channel name %r has character %r outside a-z 0-9 _" % (name, ch))
    return name


def _check_value(x, i, name):
    if x is None:
        return None
    if _is_int(x):
        x = float(x)
    if not isinstance(x, float):
        raise ProtocolError("value %r at record %d channel %r is not a number" % (x, i, name))
    if x != x:
        return None  # NaN on the wire means missing
    if not -FLOAT32_MAX <= x <= FLOAT32_MAX:
        raise ProtocolError("value %r at record %d channel %r is not finite float32" % (x, i, name))
    return x


class Batch:
    """One batch of readings as it travels from a board to the gateway."""

    def __init__(self, boot, seq, t, channels, values, period_ms=None, anomalies=()):
        self.boot = boot
        self.seq = seq
        self.t = t
        self.channels = channels
        self.values = values
        self.period_ms = period_ms
        self.anomalies = anomalies
        self.validate()

    def validate(self):
        """Check every field and normalise containers to lists/tuples; return self."""
        _check_u32("boot", self.boot)
        _check_u32("seq", self.seq)
        _check_u32("t", self.t)
        if self.period_ms is not None:
            _check_u32("period_ms", self.period_ms)
        chans = self.channels
        if not isinstance(chans, (list, tuple)):
            raise ProtocolError("channels %r is not a list" % (chans,))
        if not 1 <= len(chans) <= MAX_CHANNELS:
            raise ProtocolError("channel count %d exceeds %d" % (len(chans), MAX_CHANNELS)
                                if len(chans) else "channel count 0 is below 1")
        seen = []
        for name in chans:
            _check_channel(name)
            if name in seen:
                raise ProtocolError("channel name %r is repeated" % (name,))
            seen.append(name)
        self.channels = seen
        rows = self.values
        if not isinstance(rows, (list, tuple)):
            raise ProtocolError("values %r is not a list" % (rows,))
        n = len(rows)
        if not 1 <= n <= MAX_RECORDS:
            raise ProtocolError("record count %d is outside 1..%d" % (n, MAX_RECORDS))
        if self.seq + n - 1 > U32:
            raise ProtocolError("seq %d + %d records overflows 32 bits" % (self.seq, n))
        width = len(seen)
        out = []
        for i in range(n):
            row = rows[i]
            if not isinstance(row, (list, tuple)):
                raise ProtocolError("record %d %r is not a list" % (i, row))
            if len(row) != width:
                raise ProtocolError("record %d has %d values for %d channels"
                                    % (i, len(row), width))
            out.append([_check_value(row[j], i, seen[j]) for j in range(width)])
        self.values = out
        marks = self.anomalies
        if not isinstance(marks, (list, tuple)):
            raise ProtocolError("anomalies %r is not a list" % (marks,))
        last = -1
        for k in marks:
            if not _is_int(k) or not 0 <= k < n:
                raise ProtocolError("anomaly index %r is outside 0..%d" % (k, n - 1))
            if k <= last:
                raise ProtocolError("anomaly index %d is not in ascending order" % k)
            last = k
        self.anomalies = tuple(marks)
        return self

    def __eq__(self, other):
        return (isinstance(other, Batch) and self.boot == other.boot and self.seq == other.seq
                and self.t == other.t and self.channels == other.channels
                and self.values == other.values and self.period_ms == other.period_ms
                and self.anomalies == other.anomalies)

    def __repr__(self):
        return "Batch(boot=%d, seq=%d, t=%d, channels=%r, records=%d)" % (
            self.boot, self.seq, self.t, self.channels, len(self.values))


def _to_int16(x, scale):
    """``x`` as a count of 10**scale units, or None when it does not fit int16."""
    raw = round(x * 10 ** -scale) if scale < 0 else round(x / 10 ** scale)
    return raw if -32767 <= raw <= 32767 else None


def _from_int16(raw, scale):
    # Dividing by an exact power of ten gives the double nearest the decimal value,
    # so 2153 at scale -2 comes back as exactly 21.53.
    if raw == INT16_MISSING:
        return None
    return raw / 10 ** -scale if scale < 0 else float(raw * 10 ** scale)


def channel_codes(batch, scales=None):
    """The value code of each channel: 0 (float32) or ``scale + 8`` (int16 of 10**scale units).

    ``scales`` gives each channel's resolution as a decimal exponent (-2: hundredths), or
    None for float32. A channel with a value that does not fit int16 at its scale goes
    out as float32 in this batch, so nothing is clipped.
    """
    width = len(batch.channels)
    if scales is None:
        return [0] * width
    if len(scales) != width:
        raise ProtocolError("scales has %d entries for %d channels" % (len(scales), width))
    codes = []
    for j in range(width):
        scale = scales[j]
        if scale is None:
            codes.append(0)
            continue
        if not _is_int(scale) or not SCALE_MIN <= scale <= SCALE_MAX:
            raise ProtocolError("scale %r of channel %r is outside %d..%d"
                                % (scale, batch.channels[j], SCALE_MIN, SCALE_MAX))
        fits = True
        for row in batch.values:
            if row[j] is not None and _to_int16(row[j], scale) is None:
                fits = False
                break
        codes.append(scale + 8 if fits else 0)
    return codes


def encoded_size(batch, codes=None):
    """Bytes the binary form of ``batch`` takes with the given channel codes."""
    codes = codes or [0] * len(batch.channels)
    n = len(batch.values)
    size = HEADER_SIZE
    if batch.period_ms is not None:
        size += 4
    if batch.anomalies:
        size += (n + 7) // 8
    for j in range(len(batch.channels)):
        size += 1 + len(batch.channels[j]) + n * (2 if codes[j] else 4)
    return size


def encode_into(buf, batch, codes=None):
    """Write the binary form of ``batch`` into ``buf``; return the length.

    Lets a board reuse one preallocated bytearray for every batch. ``codes`` comes
    from ``channel_codes`` (default: every channel float32).
    """
    codes = codes or [0] * len(batch.channels)
    n = len(batch.values)
    flags = (FLAG_PERIOD if batch.period_ms is not None else 0) | (
        FLAG_ANOMALIES if batch.anomalies else 0)
    struct.pack_into(_HEADER, buf, 0, VERSION, flags, len(batch.channels), n,
                     batch.boot, batch.seq, batch.t)
    off = HEADER_SIZE
    if flags & FLAG_PERIOD:
        struct.pack_into(">I", buf, off, batch.period_ms)
        off += 4
    for j in range(len(batch.channels)):
        name = batch.channels[j]
        buf[off] = (codes[j] << 4) | (len(name) - 1)
        buf[off + 1:off + 1 + len(name)] = name.encode()
        off += 1 + len(name)
    if flags & FLAG_ANOMALIES:
        nbytes = (n + 7) // 8
        for k in range(nbytes):
            buf[off + k] = 0
        for k in batch.anomalies:
            buf[off + (k >> 3)] |= 1 << (k & 7)
        off += nbytes
    for row in batch.values:
        for j in range(len(row)):
            x = row[j]
            code = codes[j]
            if code:
                struct.pack_into(">h", buf, off,
                                 INT16_MISSING if x is None else _to_int16(x, code - 8))
                off += 2
            else:
                if x is None:
                    buf[off:off + 4] = _NAN_BYTES
                else:
                    struct.pack_into(">f", buf, off, x)
                off += 4
    return off


def encode_binary(batch, scales=None):
    """The binary v1 form; ``scales`` (see ``channel_codes``) makes it about half the size."""
    codes = channel_codes(batch, scales)
    buf = bytearray(encoded_size(batch, codes))
    encode_into(buf, batch, codes)
    return bytes(buf)


def decode_binary(data):
    """Parse a binary v1 batch; any defect raises ProtocolError."""
    size = len(data)
    if size < HEADER_SIZE:
        raise ProtocolError("payload length %d is shorter than the %d-byte header"
                            % (size, HEADER_SIZE))
    version, flags, nch, n, boot, seq, t = struct.unpack_from(_HEADER, data, 0)
    if version != VERSION:
        raise ProtocolError("version %d is not supported (expected %d)" % (version, VERSION))
    if flags & ~_KNOWN_FLAGS:
        raise ProtocolError("flags 0x%02x has unknown bits" % flags)
    if not 1 <= nch <= MAX_CHANNELS:
        raise ProtocolError("channel count %d is outside 1..%d" % (nch, MAX_CHANNELS))
    if n < 1:
        raise ProtocolError("record count 0 is below 1")
    off = HEADER_SIZE
    period = None
    if flags & FLAG_PERIOD:
        if size < off + 4:
            raise ProtocolError("payload length %d ends inside period_ms" % size)
        period = struct.unpack_from(">I", data, off)[0]
        off += 4
    channels = []
    codes = []
    record_size = 0
    for _ in range(nch):
        if off >= size:
            raise ProtocolError("payload length %d ends inside channel names" % size)
        code = data[off] >> 4
        end = off + 2 + (data[off] & 0x0F)
        if end > size:
            raise ProtocolError("payload length %d ends inside channel names" % size)
        try:
            name = bytes(data[off + 1:end]).decode()
        except Exception:
            raise ProtocolError("channel name %r is not UTF-8" % (bytes(data[off + 1:end]),))
        channels.append(name)
        codes.append(code)
        record_size += 2 if code else 4
        off = end
    anomalies = []
    if flags & FLAG_ANOMALIES:
        nbytes = (n + 7) // 8
        if off + nbytes > size:
            raise ProtocolError("payload length %d ends inside the anomaly bitmap" % size)
        for k in range(n):
            if data[off + (k >> 3)] & (1 << (k & 7)):
                anomalies.append(k)
        if n & 7 and data[off + nbytes - 1] >> (n & 7):
            raise ProtocolError("anomaly bitmap marks records beyond record count %d" % n)
        off += nbytes
    expected = off + record_size * n
    if size != expected:
        raise ProtocolError("payload length %d does not match %d expected for %d channels x %d"
                            " records" % (size, expected, nch, n))
    values = []
    for _ in range(n):
        row = []
        for code in codes:
            if code:
                row.append(_from_int16(struct.unpack_from(">h", data, off)[0], code - 8))
                off += 2
            else:
                row.append(struct.unpack_from(">f", data, off)[0])
                off += 4
        values.append(row)
    return Batch(boot, seq, t, channels, values, period, anomalies)


def encode_json(batch):
    """The JSON form, keys in a fixed order so both interpreters emit the same bytes."""
    parts = ['{"v":%d,"boot":%d,"seq":%d,"t":%d,"channels":' % (VERSION, batch.boot, batch.seq,
                                                               batch.t),
             json.dumps(batch.channels, separators=(",", ":")),
             ',"values":', json.dumps(batch.values, separators=(",", ":"))]
    if batch.period_ms is not None:
        parts.append(',"period_ms":%d' % batch.period_ms)
    if batch.anomalies:
        parts.append(',"anomalies":' + json.dumps(list(batch.anomalies), separators=(",", ":")))
    parts.append("}")
    return "".join(parts).encode()


def decode_json(data):
    """Parse the JSON form; any defect raises ProtocolError."""
    if len(data) > MAX_JSON_BYTES:
        raise ProtocolError("payload of %d bytes exceeds %d" % (len(data), MAX_JSON_BYTES))
    try:
        doc = json.loads(bytes(data).decode())
    except Exception as exc:
        raise ProtocolError("payload is not valid UTF-8 JSON: %s" % (exc,))
    if not isinstance(doc, dict):
        raise ProtocolError("JSON payload %r is not an object" % (type(doc).__name__,))
    for key in doc:
        if key not in _JSON_KEYS:
            raise ProtocolError("unknown key %r" % (key,))
    for key in ("v", "boot", "seq", "t", "channels", "values"):
        if key not in doc:
            raise ProtocolError("missing key %r" % key)
    if doc["v"] != VERSION or not _is_int(doc["v"]):
        raise ProtocolError("version %r is not supported (expected %d)" % (doc["v"], VERSION))
    return Batch(doc["boot"], doc["seq"], doc["t"], doc["channels"], doc["values"],
                 doc.get("period_ms"), doc.get("anomalies", ()))


def decode_payload(data):
    """Decode either form, told apart by the first byte (``{`` or version 1)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ProtocolError("payload %r is not bytes" % (type(data).__name__,))
    if not len(data):
        raise ProtocolError("payload is empty")
    first = data[0]
    if first == 0x7B:
        return decode_json(data)
    if first == VERSION:
        return decode_binary(data)
    raise ProtocolError("payload starts with byte 0x%02x, neither binary v1 nor JSON" % first)
