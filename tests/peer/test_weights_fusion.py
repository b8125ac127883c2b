"""Weights on the wire and the fusion strategies."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from safetensors.numpy import save

from gateway.peer import PeerRejected, decode_weights, encode_weights
from gateway.peer.fusion import (
    coordinate_median,
    krum,
    staleness_discount,
    trimmed_mean,
    weighted_mean,
)
from gateway.peer.weights import raw_float32_bytes, validate


def _weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "layers.0.weight": (rng.standard_normal((64, 32)) * 0.1).astype(np.float32),
        "layers.0.bias": np.zeros(32, np.float32),
    }


def test_float32_round_trip_is_exact_and_float16_close() -> None:
    w = _weights()
    exact = decode_weights(encode_weights(w, dtype="float32", compress=False))
    assert all(np.array_equal(exact[k], w[k]) for k in w)
    half = decode_weights(encode_weights(w))
    assert max(float(np.abs(half[k] - w[k]).max()) for k in w) < 1e-3
    assert all(half[k].dtype == np.float32 for k in half)


def test_float16_compressed_is_at_most_half_of_raw_float32() -> None:
    w = _weights()
    assert len(encode_weights(w)) <= 0.5 * raw_float32_bytes(w)


def test_non_finite_weights_are_rejected() -> None:
    w = _weights()
    w["layers.0.bias"][3] = np.nan
    with pytest.raises(PeerRejected) as info:
        decode_weights(encode_weights(w, dtype="float32"))
    assert info.value.reason == "non_finite"


def test_decompression_bomb_and_junk_are_rejected() -> None:
    bomb = b"LWZ1" + zlib.compress(b"\0" * (8 << 20))
    with pytest.raises(PeerRejected) as info:
        decode_weights(bomb, max_bytes=1 << 20)
    assert info.value.reason == "oversized_weights"
    for junk in (b"XXXX1234", b"LWS1" + b"\xff" * 20, b"LWZ1notzlib"):
        with pytest.raises(PeerRejected) as info:
            decode_weights(junk)
        assert info.value.reason == "malformed_weights"
    ints = b"LWS1" + save({"a": np.arange(4, dtype=np.int32)})
    with pytest.raises(PeerRejected, match="dtype"):
        decode_weights(ints)


def test_validate_checks_shapes_and_norm_bound() -> None:
    ref = _weights(0)
    validate(_weights(1), ref, max_norm=1e3, norm_ratio=10)
    with pytest.raises(PeerRejected) as info:
        validate({"layers.0.weight": ref["layers.0.weight"]}, ref, max_norm=1e3, norm_ratio=10)
    assert info.value.reason == "shape_mismatch"
    scaled = {k: v * 50 for k, v in ref.items()}
    with pytest.raises(PeerRejected) as info:
        validate(scaled, ref, max_norm=1e3, norm_ratio=10)
    assert info.value.reason == "norm_bound"


def _w(*values: float) -> dict[str, np.ndarray]:
    return {"w": np.asarray(values, np.float32)}


def test_weighted_mean_weights_by_factor() -> None:
    out = weighted_mean([(_w(0, 0), 1.0), (_w(4, 8), 3.0)])
    assert out["w"].tolist() == [3.0, 6.0]


def test_median_and_trimmed_mean_ignore_one_outlier() -> None:
    items = [(_w(1), 1.0), (_w(2), 1.0), (_w(3), 1.0), (_w(1000), 100.0)]
    assert coordinate_median(items)["w"].tolist() == [2.5]
    assert trimmed_mean(items)["w"].tolist() == [2.5]
    five = [*items, (_w(2), 1.0)]
    assert coordinate_median(five)["w"].tolist() == [2.0]
    assert trimmed_mean(five)["w"].tolist() == pytest.approx([7 / 3])


def test_krum_drops_the_far_model() -> None:
    items = [
        (_w(1, 1), 1.0),
        (_w(1.1, 1), 1.0),
        (_w(0.9, 1), 1.0),
        (_w(1, 1.1), 1.0),
        (_w(-40, 40), 1.0),
    ]
    out = krum(items, f=1)
    assert np.allclose(out["w"], [1.0, 1.025])


def test_staleness_discount_halves_per_half_life() -> None:
    assert staleness_discount(0, 2) == 1.0
    assert staleness_discount(2, 2) == 0.5
    assert staleness_discount(4, 2) == 0.25
    assert staleness_discount(3, 0) == 1.0
