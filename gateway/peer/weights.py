"""Weights on the wire: safetensors, float16 or float32, optionally zlib-compressed.

A blob starts with a 4-byte tag saying how the rest is packed: ``LWZ1`` zlib of
a safetensors file, ``LWS1`` a plain safetensors file. Decoding is bounded
(compressed and decompressed size) and checks every tensor's dtype and that all
values are finite; shape checks against the local model happen in ``validate``.
"""

from __future__ import annotations

import zlib
from typing import Literal

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load, save

from gateway.errors import PeerRejected

Weights = dict[str, np.ndarray]
WireDtype = Literal["float16", "float32"]

TAG_ZLIB = b"LWZ1"
TAG_RAW = b"LWS1"
MAX_TENSORS = 64


def encode_weights(
    weights: Weights, *, dtype: WireDtype = "float16", compress: bool = True
) -> bytes:
    """Serialize ``weights`` for the content store."""
    cast = {
        name: np.ascontiguousarray(value, dtype=np.dtype(dtype)) for name, value in weights.items()
    }
    body = save(cast)
    if compress:
        return TAG_ZLIB + zlib.compress(body, 6)
    return TAG_RAW + body


def raw_float32_bytes(weights: Weights) -> int:
    """What the weights would cost as bare float32 values (the baseline for wire-size figures)."""
    return sum(int(np.asarray(value).size) * 4 for value in weights.values())


def decode_weights(blob: bytes, *, max_bytes: int = 4 << 20) -> Weights:
    """Parse a weights blob into float32 arrays; raise PeerRejected naming the fault."""
    tag, body = blob[:4], blob[4:]
    if tag == TAG_ZLIB:
        inflater = zlib.decompressobj()
        try:
            body = inflater.decompress(body, max_bytes + 1)
        except zlib.error as exc:
            raise PeerRejected("malformed_weights",
                               f"weights blob does not inflate: {exc}") from exc
        if len(body) > max_bytes or inflater.unconsumed_tail:
            raise PeerRejected("oversized_weights", f"weights inflate beyond {max_bytes} bytes")
    elif tag != TAG_RAW:
        raise PeerRejected("malformed_weights", f"weights blob tag {tag!r} is not LWZ1 or LWS1")
    if len(body) > max_bytes:
        raise PeerRejected("oversized_weights", f"weights of {len(body)} bytes exceed {max_bytes}")
    try:
        tensors = load(body)
    except (SafetensorError, ValueError, TypeError) as exc:
        raise PeerRejected("malformed_weights", f"weights are not safetensors: {exc}") from exc
    if not tensors or len(tensors) > MAX_TENSORS:
        raise PeerRejected(
            "malformed_weights", f"weights hold {len(tensors)} tensors, not 1..{MAX_TENSORS}"
        )
    out: Weights = {}
    for name, value in tensors.items():
        if value.dtype not in (np.float16, np.float32):
            raise PeerRejected("malformed_weights", f"tensor {name!r} has dtype {value.dtype}")
        value = value.astype(np.float32)
        if not np.isfinite(value).all():
            raise PeerRejected("non_finite", f"tensor {name!r} holds NaN or infinite values")
        out[name] = value
    return out


def global_norm(weights: Weights) -> float:
    return float(
        np.sqrt(sum(float(np.sum(np.square(v, dtype=np.float64))) for v in weights.values()))
    )


def validate(candidate: Weights, reference: Weights, *, max_norm: float, norm_ratio: float) -> None:
    """Check ``candidate`` against the local model: same tensors and shapes, bounded norm.

    The norm bound is both absolute (``max_norm``) and relative to the local
    weights (``norm_ratio``): scaled-up weights are the cheapest attack on
    averaging, and honest peers of one session stay within a small factor.
    """
    if set(candidate) != set(reference):
        raise PeerRejected("shape_mismatch",
                           f"tensors {sorted(candidate)} are not {sorted(reference)}")
    for name, value in candidate.items():
        if value.shape != reference[name].shape:
            raise PeerRejected(
                "shape_mismatch",
                f"tensor {name!r} has shape {value.shape}, expected {reference[name].shape}",
            )
    norm = global_norm(candidate)
    bound = min(max_norm, norm_ratio * max(global_norm(reference), 1e-6))
    if norm > bound:
        raise PeerRejected("norm_bound", f"weights norm {norm:.4g} exceeds the bound {bound:.4g}")
