"""Validation: rejection reasons, plausible ranges (implausible values stored as missing),
status documents, and the fast binary reader agreeing with the shared codec on every payload
it accepts."""

from __future__ import annotations

import json
import math
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.ingest.fastpath import FastBinary
from gateway.ingest.validate import (
    DEFAULT_RANGES,
    REASONS,
    ReadingRejected,
    Validator,
    parse_ranges,
)
from gateway.store import Changes
from shared.codec import Batch, channel_codes, decode_payload, encode_binary, encode_json
from shared.errors import ProtocolError


def validator(known: set[str] | None = None, ranges=None) -> Validator:
    keys: dict[str, int] = {}

    def resolve(device: str) -> int | None:
        if known is not None and device not in known:
            return None
        return keys.setdefault(device, len(keys) + 1)

    csets: dict[tuple[str, ...], int] = {}
    return Validator("p", resolve=resolve,
                     channel_set=lambda names: csets.setdefault(names, len(csets) + 1),
                     ranges=ranges)


def reject(v: Validator, topic: str, payload: bytes) -> ReadingRejected:
    changes = Changes()
    with pytest.raises(ReadingRejected) as info:
        v.add(topic, payload, 1000.0, changes)
    assert not changes.rows
    return info.value


GOOD = encode_binary(Batch(1, 0, 0, ["temp"], [[20.0]]))


@pytest.mark.parametrize(("topic", "payload", "reason", "words"), [
    ("p/Dev/data", GOOD, "topic", "'Dev'"),
    ("p/dev1/model", GOOD, "topic", "not a data or status topic"),
    ("p/dev1/data", b"", "decode", "empty"),
    ("p/dev1/data", b"\x02" + GOOD[1:], "decode", "byte 0x02"),
    ("p/dev1/data", GOOD[:-1], "decode", "length"),
    ("p/dev1/data", b'{"v":1}', "decode", "missing key"),
    ("p/dev1/status", b"not json", "status", "not UTF-8 JSON"),
    ("p/dev1/status", b'{"state":"asleep"}', "status", "'asleep'"),
    ("p/dev1/status", b"[1]", "status", "not an object"),
])
def test_rejections_name_reason_and_value(topic: str, payload: bytes, reason: str,
                                          words: str) -> None:
    rej = reject(validator(), topic, payload)
    assert rej.reason == reason
    assert words in rej.detail


def test_unknown_device_is_rejected_when_not_registered() -> None:
    rej = reject(validator(known={"dev1"}), "p/dev2/data", GOOD)
    assert (rej.reason, rej.device) == ("unknown_device", "dev2")
    changes = Changes()
    validator(known={"dev1"}).add("p/dev1/data", GOOD, 1.0, changes)
    assert changes.readings == 1


def test_missing_values_are_not_range_errors() -> None:
    changes = Changes()
    batch = Batch(1, 0, 0, ["hum"], [[None], [50.0], [None]])
    validator().add("p/dev1/data", encode_binary(batch), 1.0, changes)
    validator().add("p/dev1/data", encode_json(Batch(1, 3, 0, ["hum"], [[None]])), 1.0, changes)
    assert changes.readings == 4


def blobs(changes: Changes) -> list[tuple[float, ...]]:
    """The stored values of every record, NaN as None."""
    out = []
    for rows in changes.rows.values():
        for row in rows:
            vals = struct.unpack(f">{len(row[5]) // 4}f", row[5])
            out.append(tuple(None if v != v else v for v in vals))
    return out


@pytest.mark.parametrize("encode", [encode_binary, encode_json])
def test_implausible_value_is_stored_as_missing_and_flagged(encode) -> None:
    v = validator()
    batch = Batch(1, 0, 0, ["x", "hum", "temp"],
                  [[1.0, 50.0, 20.0], [2.0, -3.0, 21.0], [3.0, None, 120.5], [4.0, 45.0, 22.0]])
    payload = encode(batch)
    for _ in range(2):  # the binary payload goes through the codec, then the fast reader
        changes = Changes()
        prepared = v.add("p/dev1/data", payload, 1000.0, changes, False)
        assert prepared.readings == 4
        assert blobs(changes) == [(1.0, 50.0, 20.0), (2.0, None, 21.0), (3.0, None, None),
                                  (4.0, 45.0, 22.0)]
        assert changes.implausible == {"hum": 1, "temp": 1}
        assert not changes.rejects
        (flag,) = changes.flagged
        assert (flag.topic, flag.device, flag.reason, flag.payload) == (
            "p/dev1/data", "dev1", "range", payload)
        assert flag.detail == ("device 'dev1': hum = -3.0 at record 1 outside 0..100;"
                               " temp = 120.5 at record 2 outside -60..100"
                               " (stored as missing, the rest of the payload stored)")


def test_only_flagged_records_are_repacked() -> None:
    """Binary records without an implausible value are the payload's own bytes."""
    v = validator()
    payload = encode_binary(Batch(1, 0, 0, ["temp"], [[20.0], [500.0], [21.0]]))
    changes = Changes()
    v.add("p/dev1/data", payload, 1.0, changes)
    rows = changes.rows[1]
    assert [r[5] for r in rows] == [payload[-12:-8], b"\x7f\xc0\x00\x00", payload[-4:]]
    assert [r[2] for r in rows] == [0, 1, 2]


def test_many_implausible_values_are_named_up_to_a_few() -> None:
    changes = Changes()
    validator().add("p/dev1/data", encode_binary(Batch(1, 0, 0, ["co2"], [[-1.0]] * 9)), 1.0,
                    changes)
    assert changes.implausible == {"co2": 9}
    assert blobs(changes) == [(None,)] * 9
    (flag,) = changes.flagged
    assert flag.detail.count("co2 = -1.0 at record") == 5
    assert "; 4 more (stored as missing" in flag.detail


def test_unknown_device_with_implausible_value_is_rejected_not_flagged() -> None:
    rej = reject(validator(known=set()), "p/dev2/data",
                 encode_binary(Batch(1, 0, 0, ["temp"], [[999.0]])))
    assert rej.reason == "unknown_device"


def test_ranges_can_be_removed_or_narrowed() -> None:
    changes = Changes()
    v = validator(ranges={**DEFAULT_RANGES, **parse_ranges("temp=, hum=10..20")})
    v.add("p/dev1/data", encode_json(Batch(1, 0, 0, ["temp", "hum"], [[999.0, 25.0]])), 1.0,
          changes)
    assert blobs(changes) == [(999.0, None)]
    assert changes.implausible == {"hum": 1}


def test_status_document_fields() -> None:
    changes = Changes()
    v = validator()
    v.add("p/dev1/status", json.dumps({"state": "online", "fw": "2.0", "ip": "x"}).encode(),
          5.0, changes)
    (update,) = changes.statuses.values()
    assert (update.online, update.firmware, update.time) == (True, "2.0", 5.0)
    assert json.loads(update.doc_json) == {"state": "online", "fw": "2.0", "ip": "x"}
    replayed = Changes()
    v.add("p/dev1/status", b'{"state":"offline"}', 7.0, replayed, retained=True)
    (update,) = replayed.statuses.values()
    assert (update.online, update.seen) == (False, False)  # state kept, not a sighting
    cleared = Changes()
    v.add("p/dev1/status", b"", 6.0, cleared)  # a retained status being cleared
    assert not cleared


def test_parse_ranges() -> None:
    assert parse_ranges("temp=-40..85, co2=, x=1e3..2e3") == {
        "temp": (-40.0, 85.0), "co2": (-math.inf, math.inf), "x": (1000.0, 2000.0)}
    for bad in ("temp", "temp=1..", "temp=5..1", "=1..2"):
        with pytest.raises(ValueError, match="plausible range"):
            parse_ranges(bad)
    assert DEFAULT_RANGES["hum"] == (0.0, 100.0)


names = st.sampled_from(["temp", "hum", "pressure", "co2", "a", "x_1"])


@st.composite
def batches(draw: st.DrawFn) -> Batch:
    channels = draw(st.lists(names, min_size=1, max_size=5, unique=True))
    n = draw(st.integers(1, 30))
    value = st.one_of(st.none(), st.floats(-1e6, 1e6, width=32))
    values = [[draw(value) for _ in channels] for _ in range(n)]
    marks = sorted(draw(st.sets(st.integers(0, n - 1), max_size=n)))
    return Batch(draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 2**32 - 1 - n)),
                 draw(st.integers(0, 2**32 - 1)), channels, values,
                 draw(st.one_of(st.none(), st.integers(0, 2**32 - 1))), marks)


@st.composite
def scaled_batches(draw: st.DrawFn) -> tuple[Batch, list[int | None]]:
    """A batch and per-channel scales (None: float32). Most values are whole counts of the
    channel's unit, so the channel goes out as int16; a few do not fit int16 at their scale,
    which sends that channel as float32 in this batch."""
    base = draw(batches())
    scales = [draw(st.one_of(st.none(), st.integers(-7, 7))) for _ in base.channels]
    fits_all = draw(st.booleans())
    values = []
    for row in base.values:
        out = []
        for x, scale in zip(row, scales, strict=True):
            if scale is not None and x is not None and (fits_all or draw(st.booleans())):
                raw = draw(st.integers(-32767, 32767))
                x = raw / 10 ** -scale if scale < 0 else float(raw * 10 ** scale)
            out.append(x)
        values.append(out)
    batch = Batch(base.boot, base.seq, base.t, base.channels, values, base.period_ms,
                  base.anomalies)
    return batch, scales


def _same(fast, batch: Batch) -> None:
    assert fast.channels == tuple(batch.channels)
    assert (fast.boot, fast.seq, fast.t, fast.period_ms) == (
        batch.boot, batch.seq, batch.t, batch.period_ms)
    assert fast.anomalies == tuple(batch.anomalies)
    flat = [v for row in batch.values for v in row]
    assert [None if v != v else v for v in fast.values] == flat


def assert_mutations_agree(reader: FastBinary, payload: bytes, data: st.DataObject) -> None:
    """Mutate a few bytes: whatever the fast reader still accepts, the codec accepts equally."""
    mutated = bytearray(payload)
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(mutated) - 1))
        mutated[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(len(mutated) - 3, len(mutated) + 3))
    candidate = bytes(mutated[:cut]) + b"\x00" * max(0, cut - len(mutated))
    fast = reader.read(candidate)
    if fast is not None:
        try:
            decoded = decode_payload(candidate)
        except ProtocolError as exc:
            pytest.fail(f"fast reader accepted what the codec rejects: {exc}")
        _same(fast, decoded)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=batches(), data=st.data())
def test_fast_reader_agrees_with_the_codec(batch: Batch, data: st.DataObject) -> None:
    reader = FastBinary()
    payload = encode_binary(batch)
    assert reader.read(payload) is None  # unknown channel section: left to the codec
    reader.learn(payload, tuple(batch.channels))
    _same(reader.read(payload), batch)
    assert_mutations_agree(reader, payload, data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=scaled_batches(), data=st.data())
def test_fast_reader_agrees_with_the_codec_on_scaled_payloads(
        case: tuple[Batch, list[int | None]], data: st.DataObject) -> None:
    batch, scales = case
    payload = encode_binary(batch, scales)
    decoded = decode_payload(payload)
    reader = FastBinary()
    assert reader.read(payload) is None
    layout = reader.learn(payload, tuple(decoded.channels))
    assert layout is not None
    assert layout.codes == tuple(channel_codes(batch, scales))
    fast = reader.read(payload)
    _same(fast, decoded)
    assert fast.float32 == (not any(layout.codes))
    assert_mutations_agree(reader, payload, data)


def test_scaled_channels_are_read_as_the_codec_decodes_them() -> None:
    batch = Batch(1, 0, 0, ["temp", "hum", "pressure", "co2"],
                  [[21.53, 40.0, 1013.2, 4000.0], [None, 41.5, None, 32767000.0]])
    payload = encode_binary(batch, [-2, -1, None, 3])
    assert channel_codes(batch, [-2, -1, None, 3]) == [6, 7, 0, 11]
    assert payload[16] == (6 << 4) | 3  # descriptor byte of "temp": code 6, 4 characters
    reader = FastBinary()
    reader.learn(payload, tuple(batch.channels))
    fast = reader.read(payload)
    assert [None if v != v else v for v in fast.values] == [
        21.53, 40.0, struct.unpack(">f", struct.pack(">f", 1013.2))[0], 4000.0,
        None, 41.5, None, 32767000.0]
    assert not fast.float32


@pytest.mark.parametrize("scaled", [False, True])
def test_scaled_payload_is_stored_as_float32_records(scaled: bool) -> None:
    """The stored BLOB is one big-endian float32 per channel whatever the wire form."""
    batch = Batch(1, 0, 0, ["x", "hum", "temp"],
                  [[1.25, 50.5, 20.01], [None, 101.0, -3.5], [3.0, None, 22.75]])
    payload = encode_binary(batch, [-2, -1, -2] if scaled else None)
    f32 = [tuple(None if v is None else struct.unpack(">f", struct.pack(">f", v))[0]
                 for v in row) for row in decode_payload(payload).values]
    expected = [f32[0], (None, None, f32[1][2]), f32[2]]  # hum 101 is implausible
    v = validator()
    for _ in range(2):  # the codec, then the fast reader
        changes = Changes()
        v.add("p/dev1/data", payload, 1.0, changes)
        assert blobs(changes) == expected
        assert [len(r[5]) for r in changes.rows[1]] == [12, 12, 12]
        assert changes.implausible == {"hum": 1}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=scaled_batches())
def test_stored_scaled_values_are_the_decoded_ones_with_implausible_ones_missing(
        case: tuple[Batch, list[int | None]]) -> None:
    batch, scales = case
    payload = encode_binary(batch, scales)
    decoded = decode_payload(payload)
    expected = []
    for row in decoded.values:
        kept = []
        for name, value in zip(decoded.channels, row, strict=True):
            lo, hi = DEFAULT_RANGES.get(name, (-math.inf, math.inf))
            if value is not None and not lo <= value <= hi:
                value = None
            kept.append(None if value is None else struct.unpack(">f", struct.pack(">f", value))[0])
        expected.append(tuple(kept))
    v = validator()
    for _ in range(2):  # codec, then the fast reader
        changes = Changes()
        v.add("p/dev1/data", payload, 1.0, changes)
        assert blobs(changes) == expected


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=batches(), binary=st.booleans())
def test_stored_values_are_the_sent_ones_with_implausible_ones_missing(batch: Batch,
                                                                      binary: bool) -> None:
    payload = encode_binary(batch) if binary else encode_json(batch)
    v = validator()
    expected = []
    blanked = 0
    for row in batch.values:
        kept = []
        for name, value in zip(batch.channels, row, strict=True):
            lo, hi = DEFAULT_RANGES.get(name, (-math.inf, math.inf))
            if value is not None and not lo <= value <= hi:
                value = None
                blanked += 1
            kept.append(None if value is None else struct.unpack(">f", struct.pack(">f", value))[0])
        expected.append(tuple(kept))
    for _ in range(2 if binary else 1):  # codec, then the fast reader
        changes = Changes()
        v.add("p/dev1/data", payload, 1.0, changes)
        assert blobs(changes) == expected
        assert sum(changes.implausible.values()) == blanked
        assert len(changes.flagged) == (1 if blanked else 0)


def test_validator_rejects_infinity_through_the_codec() -> None:
    v = validator()
    payload = bytearray(encode_binary(Batch(1, 0, 0, ["x"], [[1.0], [2.0]])))
    changes = Changes()
    v.add("p/dev1/data", bytes(payload), 1.0, changes)  # teaches the fast reader
    payload[-4:] = b"\x7f\x80\x00\x00"  # +inf
    rej = reject(v, "p/dev1/data", bytes(payload))
    assert rej.reason == "decode" and "inf" in rej.detail


@settings(max_examples=500, deadline=None)
@given(payload=st.one_of(st.binary(max_size=200),
                         st.builds(lambda b: encode_json(b)[:-1], batches()),
                         st.builds(lambda b, k: encode_binary(b)[:k], batches(),
                                   st.integers(0, 60))),
       kind=st.sampled_from(["data", "status"]))
def test_any_payload_is_stored_or_rejected_with_a_known_reason(payload: bytes,
                                                               kind: str) -> None:
    changes = Changes()
    try:
        validator().add(f"p/dev1/{kind}", payload, 1.0, changes)
    except ReadingRejected as rej:
        assert rej.reason in REASONS and rej.detail
        assert not changes.rows and not changes.statuses
