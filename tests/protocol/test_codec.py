"""The batch codec: round trips, exact rejections, and robustness to arbitrary input."""

import contextlib
import json
import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.codec import (
    MAX_CHANNELS,
    MAX_RECORDS,
    Batch,
    decode_binary,
    decode_payload,
    encode_binary,
    encode_json,
)
from shared.errors import ProtocolError

u32 = st.integers(min_value=0, max_value=0xFFFFFFFF)
name = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=16)
f32 = st.floats(width=32, allow_nan=False, allow_infinity=False)


@st.composite
def batches(draw: st.DrawFn) -> Batch:
    channels = draw(st.lists(name, min_size=1, max_size=MAX_CHANNELS, unique=True))
    n = draw(st.integers(min_value=1, max_value=40))
    values = draw(st.lists(st.lists(st.one_of(st.none(), f32), min_size=len(channels),
                                    max_size=len(channels)), min_size=n, max_size=n))
    seq = draw(st.integers(min_value=0, max_value=0xFFFFFFFF - n + 1))
    anomalies = tuple(sorted(draw(st.sets(st.integers(min_value=0, max_value=n - 1)))))
    period = draw(st.one_of(st.none(), u32))
    return Batch(draw(u32), seq, draw(u32), channels, values, period, anomalies)


@given(batches())
@settings(max_examples=300)
def test_binary_round_trip(batch: Batch) -> None:
    assert decode_payload(encode_binary(batch)) == batch


@st.composite
def scaled_batches(draw: st.DrawFn) -> tuple[Batch, list[int | None]]:
    """Batches whose values are exact decimals at each channel's scale (or float32)."""
    width = draw(st.integers(min_value=1, max_value=6))
    channels = [f"c{j}" for j in range(width)]
    scales = draw(st.lists(st.one_of(st.none(), st.integers(min_value=-7, max_value=7)),
                           min_size=width, max_size=width))
    n = draw(st.integers(min_value=1, max_value=30))
    counts = st.integers(min_value=-32767, max_value=32767)
    rows = []
    for _ in range(n):
        row: list[float | None] = []
        for scale in scales:
            if draw(st.booleans()) and draw(st.booleans()):
                row.append(None)
            elif scale is None:
                row.append(draw(f32))
            elif scale < 0:
                row.append(draw(counts) / 10 ** -scale)
            else:
                row.append(float(draw(counts) * 10 ** scale))
        rows.append(row)
    return Batch(draw(u32), 0, draw(u32), channels, rows), scales


@given(scaled_batches())
@settings(max_examples=300)
def test_scaled_binary_round_trip(case: tuple[Batch, list[int | None]]) -> None:
    batch, scales = case
    payload = encode_binary(batch, scales)
    assert decode_payload(payload) == batch
    assert len(payload) <= len(encode_binary(batch))


def test_scaled_channels_take_two_bytes_and_round_to_their_resolution() -> None:
    batch = Batch(1, 0, 0, ["temp", "hum"], [[21.537, 40.1], [None, 39.95]])
    payload = encode_binary(batch, [-2, -1])
    assert len(payload) == 16 + (1 + 4) + (1 + 3) + 2 * 2 * 2
    assert payload[16] == ((-2 + 8) << 4) | 3  # descriptor: code 6, name length 4
    assert decode_payload(payload).values == [[21.54, 40.1], [None, 40.0]]


def test_a_channel_that_does_not_fit_int16_goes_out_as_float32() -> None:
    batch = Batch(1, 0, 0, ["temp", "pressure"], [[21.5, 101325.0]])
    payload = encode_binary(batch, [-2, -2])  # 101325 hPa * 100 overflows int16
    assert payload[16] >> 4 == 6 and payload[16 + 5] >> 4 == 0
    assert decode_payload(payload).values == [[21.5, 101325.0]]


def test_scales_are_checked() -> None:
    batch = Batch(1, 0, 0, ["temp"], [[21.5]])
    with pytest.raises(ProtocolError, match="scales has 2 entries for 1 channels"):
        encode_binary(batch, [-2, -2])
    message = "scale -9 of channel 'temp' is outside -7..7"
    with pytest.raises(ProtocolError, match=re.escape(message)):
        encode_binary(batch, [-9])


@given(batches())
@settings(max_examples=300)
def test_json_round_trip(batch: Batch) -> None:
    assert decode_payload(encode_json(batch)) == batch


@given(st.binary(max_size=600))
@settings(max_examples=2000)
def test_arbitrary_bytes_raise_only_protocol_error(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decode_payload(data)


@given(st.binary(min_size=16, max_size=400).map(lambda b: b"\x01" + b[1:]))
@settings(max_examples=2000)
def test_arbitrary_binary_bodies_raise_only_protocol_error(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        decode_payload(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                  max_size=4),
    max_leaves=20,
)
near_batches = st.fixed_dictionaries(
    {"v": st.sampled_from([1, 2, "1", True]), "boot": json_values, "seq": json_values,
     "t": json_values, "channels": json_values, "values": json_values},
    optional={"period_ms": json_values, "anomalies": json_values, "extra": json_values},
)


@given(st.one_of(json_values, near_batches))
@settings(max_examples=2000)
def test_arbitrary_json_raises_only_protocol_error(doc: object) -> None:
    with contextlib.suppress(ProtocolError):
        decode_payload(json.dumps(doc).encode())


def sample(**overrides: object) -> dict[str, object]:
    doc: dict[str, object] = {"v": 1, "boot": 1, "seq": 0, "t": 0, "channels": ["temp"],
                              "values": [[20.0]]}
    doc.update(overrides)
    return doc


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (sample(channels=[f"c{i}" for i in range(300)], values=[[0.0] * 300]),
         "channel count 300 exceeds 16"),
        (sample(channels=[]), "channel count 0 is below 1"),
        (sample(channels=["Temp"]), "channel name 'Temp' has character 'T' outside a-z 0-9 _"),
        (sample(channels=["temp", "temp"], values=[[1.0, 2.0]]), "channel name 'temp' is repeated"),
        (sample(values=[[1.0, 2.0]]), "record 0 has 2 values for 1 channels"),
        (sample(values=[]), "record count 0 is outside 1..255"),
        (sample(values=[[0.0]] * 256), "record count 256 is outside 1..255"),
        (sample(values=[["hot"]]), "value 'hot' at record 0 channel 'temp' is not a number"),
        (sample(values=[[1e39]]), "value 1e+39 at record 0 channel 'temp' is not finite float32"),
        (sample(boot=-1), "boot -1 is outside 0..4294967295"),
        (sample(seq=True), "seq True is not an integer"),
        (sample(seq=0xFFFFFFFF, values=[[1.0], [2.0]]), "seq 4294967295 + 2 records overflows"),
        (sample(v=2), "version 2 is not supported (expected 1)"),
        (sample(extra=1), "unknown key 'extra'"),
        (sample(anomalies=[3]), "anomaly index 3 is outside 0..0"),
        (sample(period_ms=-5), "period_ms -5 is outside 0..4294967295"),
    ],
)
def test_json_rejections_name_field_and_value(doc: dict[str, object], message: str) -> None:
    with pytest.raises(ProtocolError) as info:
        decode_payload(json.dumps(doc).encode())
    assert message in str(info.value)


def test_binary_rejections_name_field_and_value() -> None:
    good = encode_binary(Batch(1, 0, 0, ["temp"], [[20.0], [21.0]]))
    cases = [
        (b"", "payload is empty"),
        (b"\x07" + good[1:], "payload starts with byte 0x07"),
        (good[:10], "payload length 10 is shorter than the 16-byte header"),
        (good[:-1], f"payload length {len(good) - 1} does not match {len(good)} expected"),
        (good + b"\x00", f"payload length {len(good) + 1} does not match {len(good)} expected"),
        (good[:1] + b"\x80" + good[2:], "flags 0x80 has unknown bits"),
        (good[:2] + b"\x00" + good[3:], "channel count 0 is outside 1..16"),
    ]
    for payload, message in cases:
        with pytest.raises(ProtocolError) as info:
            decode_payload(payload)
        assert message in str(info.value), payload


def test_missing_values_travel_as_nan_and_come_back_as_none() -> None:
    batch = Batch(1, 5, 0, ["temp", "hum"], [[math.nan, 40.0]])
    assert batch.values == [[None, 40.0]]
    decoded = decode_binary(encode_binary(batch))
    assert decoded.values == [[None, 40.0]]


def test_limits_are_the_documented_ones() -> None:
    assert (MAX_CHANNELS, MAX_RECORDS) == (16, 255)
