"""Weights <-> safetensors bytes: the exchange format shared with the peer layer."""

from __future__ import annotations

import numpy as np
from safetensors.numpy import load, save

from gateway.learning.mlp import Weights


def weights_to_bytes(weights: Weights, metadata: dict[str, str] | None = None) -> bytes:
    """safetensors bytes of ``weights`` (float32, names sorted by safetensors itself)."""
    arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in weights.items()}
    return bytes(save(arrays, metadata=metadata))


def weights_from_bytes(data: bytes) -> Weights:
    """Weights read back from safetensors bytes (float32 copies)."""
    return {k: np.asarray(v, dtype=np.float32) for k, v in load(bytes(data)).items()}
