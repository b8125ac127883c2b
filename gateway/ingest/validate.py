"""Turn one MQTT message into store rows, or a rejection with a reason.

Everything a device sends is untrusted: the topic names the device (a payload
cannot speak for another device), the payload goes through the shared codec,
and each channel with a known physical meaning must be within a plausible
range: a value outside it is stored as missing (what a failed sensor sends),
counted and quarantined, and the good readings beside it are kept. A rejection
carries a short reason (a metric label) and a detail that names the offending
value.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass

from gateway.errors import ReadingRejected
from gateway.ingest.fastpath import FastBinary
from gateway.store import Changes, Reject, StatusUpdate
from shared.codec import decode_payload
from shared.errors import ProtocolError
from shared.plausible import plausible_ranges
from shared.topics import DATA, STATUS, parse_topic

# Plausible physical ranges (shared/plausible.py, every channel a driver produces); a
# value outside its channel's range is stored as missing (NaN), counted and quarantined,
# and the rest of the payload is stored.
DEFAULT_RANGES: dict[str, tuple[float, float]] = plausible_ranges()
MAX_STATUS_BYTES = 4096
MAX_SHOWN = 5  # implausible values named in one quarantine row's detail
DEFAULT_PERIOD_MS = 1000
_NAN = float("nan")
_ROWS = [struct.Struct(f">{k}f") for k in range(17)]  # one record's BLOB, by channel count
_PACKERS: dict[int, struct.Struct] = {}  # value count -> all records' BLOBs at once


def _packer(count: int) -> struct.Struct:
    """``>{count}f``, cached (at most 16 channels x 255 records distinct counts)."""
    s = _PACKERS.get(count)
    if s is None:
        s = _PACKERS[count] = struct.Struct(f">{count}f")
    return s


REASONS = ("topic", "decode", "unknown_device", "status", "internal")  # of a ReadingRejected
IMPLAUSIBLE = "range"  # quarantine reason of a stored payload with values stored as missing


def parse_ranges(spec: str) -> dict[str, tuple[float, float]]:
    """Parse ``"temp=-40..85, hum=0..100"`` (overrides); ``name=`` with no range drops a
    default. Raises ValueError naming the bad entry."""
    out: dict[str, tuple[float, float]] = {}
    for raw in spec.split(","):
        entry = raw.strip()
        if not entry:
            continue
        name, sep, rng = entry.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"plausible range {entry!r} is not NAME=LOW..HIGH")
        rng = rng.strip()
        if not rng:
            out[name] = (-math.inf, math.inf)
            continue
        low, dots, high = rng.partition("..")
        try:
            lo, hi = float(low), float(high)
        except ValueError:
            raise ValueError(f"plausible range {entry!r} is not NAME=LOW..HIGH") from None
        if not dots or not lo <= hi:
            raise ValueError(f"plausible range {entry!r} has LOW above HIGH or no '..'")
        out[name] = (lo, hi)
    return out


@dataclass
class Prepared:
    kind: str
    device: str
    key: int
    readings: int


class Validator:
    """Decode, check and add one message to a group of changes.

    ``resolve(device_id)`` returns the device's store key or None when the
    device is unknown and unknown devices are rejected; ``channel_set(names)``
    returns the id of a channel set.
    """

    def __init__(self, prefix: str, *, resolve: Callable[[str], int | None],
                 channel_set: Callable[[tuple[str, ...]], int],
                 ranges: dict[str, tuple[float, float]] | None = None) -> None:
        self.prefix = prefix
        self.resolve = resolve
        self.channel_set = channel_set
        self.ranges = dict(DEFAULT_RANGES if ranges is None else ranges)
        self.fast = FastBinary()
        self._checks: dict[tuple[str, ...], list[tuple[int, float, float]]] = {}
        self._topics: dict[str, tuple[str, str]] = {}

    def add(self, topic: str, payload: bytes, recv: float, changes: Changes,
            retained: bool = False) -> Prepared:
        """``retained``: a stored status replayed by the broker on subscribe; it updates the
        registry's state but is no sign the device was seen now."""
        parsed = self._topics.get(topic)
        if parsed is None:
            try:
                parsed = parse_topic(topic, self.prefix)
            except ProtocolError as exc:
                raise ReadingRejected("topic", str(exc)) from exc
            if len(self._topics) < 65536:
                self._topics[topic] = parsed
        device, kind = parsed
        if kind == DATA:
            return self._data(topic, device, payload, recv, changes)
        if kind == STATUS:
            return self._status(device, payload, recv, changes, retained)
        raise ReadingRejected("topic", f"topic {topic!r} is not a data or status topic", device)

    def _key(self, device: str) -> int:
        key = self.resolve(device)
        if key is None:
            raise ReadingRejected("unknown_device", f"device {device!r} is not registered", device)
        return key

    def _data(self, topic: str, device: str, payload: bytes, recv: float,
              changes: Changes) -> Prepared:
        binary = payload[:1] == b"\x01"
        fast = self.fast.read(payload) if binary else None
        sliceable = False  # the payload ends with the values in the storage format
        if fast is not None:
            channels, n, flat = fast.channels, fast.n, fast.values
            boot, seq, t, period, marks = fast.boot, fast.seq, fast.t, fast.period_ms, \
                fast.anomalies
            sliceable = fast.float32
        else:
            try:
                batch = decode_payload(payload)
            except ProtocolError as exc:
                raise ReadingRejected("decode", str(exc), device) from exc
            channels = tuple(batch.channels)
            n = len(batch.values)
            flat = tuple(_NAN if v is None else v for row in batch.values for v in row)
            boot, seq, t, period, marks = batch.boot, batch.seq, batch.t, batch.period_ms, \
                tuple(batch.anomalies)
            if binary:
                layout = self.fast.learn(payload, channels)
                sliceable = layout is not None and layout.float32
        nch = len(channels)
        checks = self._checks.get(channels)
        if checks is None:
            checks = self._checks[channels] = [
                (j, *self.ranges[name]) for j, name in enumerate(channels) if name in self.ranges]
        bad: list[tuple[int, int, float, float, float]] | None = None
        for j, lo, hi in checks:
            col = flat[j::nch]
            if not (min(col) >= lo and max(col) <= hi):  # a leading NaN also lands here
                for i, v in enumerate(col):
                    if v == v and not lo <= v <= hi:
                        if bad is None:
                            bad = []
                        bad.append((i, j, v, lo, hi))
        key = self._key(device)
        step = (period or DEFAULT_PERIOD_MS) / 1000.0
        base = float(t) if t > 0 else recv - (n - 1) * step
        cset = self.channel_set(channels)
        row = _ROWS[nch]
        if bad is not None:
            # an implausible value is stored as missing, like a failed sensor's reading; the
            # rest of its record and the other records are kept
            fixed = list(flat)
            for i, j, _v, _lo, _hi in bad:
                fixed[i * nch + j] = _NAN
            flat = tuple(fixed)
        width = 4 * nch
        if sliceable:
            # binary v1 with every channel float32: the values are the payload's last 4*C*n
            # bytes, big-endian float32, which is exactly the storage format -- slice instead
            # of re-packing.
            start = len(payload) - width * n
            blobs = [payload[start + i * width:start + (i + 1) * width] for i in range(n)]
            if bad is not None:
                for i in {b[0] for b in bad}:  # only the records that changed
                    blobs[i] = row.pack(*flat[i * nch:(i + 1) * nch])
        else:
            # int16 channels on the wire (or JSON): pack every value at once, then slice
            packed = _packer(nch * n).pack(*flat)
            blobs = [packed[i * width:(i + 1) * width] for i in range(n)]
        if bad is not None:
            self._flag(topic, device, payload, recv, changes, channels, bad)
        out = changes.rows.get(key)
        if out is None:
            out = changes.rows[key] = []
        if marks:
            marked = set(marks)
            out.extend([(key, boot, seq + i, base + i * step, cset, blobs[i],
                         1 if i in marked else 0) for i in range(n)])
        else:
            out.extend([(key, boot, seq + i, base + i * step, cset, blobs[i], 0)
                        for i in range(n)])
        changes.seen[key] = recv
        changes.boots.setdefault((key, boot), recv)
        return Prepared(DATA, device, key, n)

    @staticmethod
    def _flag(topic: str, device: str, payload: bytes, recv: float, changes: Changes,
              channels: tuple[str, ...], bad: list[tuple[int, int, float, float, float]]) -> None:
        """Count the blanked values per channel and quarantine one row for the message, naming
        each value (the first few), its record and the device."""
        counts = changes.implausible
        for _i, j, _v, _lo, _hi in bad:
            counts[channels[j]] = counts.get(channels[j], 0) + 1
        shown = sorted(bad)[:MAX_SHOWN]
        parts = [f"{channels[j]} = {v!r} at record {i} outside {lo:g}..{hi:g}"
                 for i, j, v, lo, hi in shown]
        more = f"; {len(bad) - len(shown)} more" if len(bad) > len(shown) else ""
        detail = (f"device {device!r}: {'; '.join(parts)}{more}"
                  f" (stored as missing, the rest of the payload stored)")
        changes.flagged.append(Reject(time=recv, topic=topic, device=device, reason=IMPLAUSIBLE,
                                      detail=detail, payload=payload))

    def _status(self, device: str, payload: bytes, recv: float, changes: Changes,
                retained: bool = False) -> Prepared:
        if not payload:
            return Prepared(STATUS, device, -1, 0)  # a retained status being cleared
        if len(payload) > MAX_STATUS_BYTES:
            raise ReadingRejected("status", f"status payload of {len(payload)} bytes exceeds"
                                  f" {MAX_STATUS_BYTES}", device)
        try:
            doc = json.loads(bytes(payload).decode())
        except (UnicodeDecodeError, ValueError) as exc:
            raise ReadingRejected("status",
                                  f"status payload is not UTF-8 JSON: {exc}", device) from exc
        if not isinstance(doc, dict):
            raise ReadingRejected("status", f"status payload {type(doc).__name__} is not an object",
                                  device)
        state = doc.get("state")
        if state not in ("online", "offline"):
            raise ReadingRejected("status", f"status state {state!r} is not 'online' or 'offline'",
                                  device)
        firmware = doc.get("firmware", doc.get("fw"))
        if firmware is not None and not isinstance(firmware, str):
            firmware = str(firmware)
        key = self._key(device)
        changes.statuses[key] = StatusUpdate(time=recv, online=state == "online",
                                             doc_json=json.dumps(doc, sort_keys=True),
                                             firmware=firmware, seen=not retained)
        return Prepared(STATUS, device, key, 0)
