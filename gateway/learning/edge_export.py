"""The trained forecaster as the boards' compact ``LEM1`` model (scored on the board).

The format and its packer/parser live in ``shared.edge_model`` (MicroPython-compatible,
documented in docs/protocol.md); this module only turns a ``ForecastModel`` into the
arguments of ``shared.edge_model.pack_model`` and checks the board limits up front so a
refusal names the model's own numbers. The board runs ``ForecastModel.export_network``:
the whole computation folded into one network with a linear path (LEM1 flag 1) and, when
the model has calendar inputs, flag 2. Input = last W standardized readings flattened
oldest first, record-major (then the calendar values); output = H*C standardized
predictions; score = max over channels |x_std - step-1 pred| / residual_scale.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gateway.errors import EdgeExportError
from gateway.learning.forecast import ForecastModel
from shared import edge_model
from shared.errors import ProtocolError

ACTIVATION_NAMES = {"relu": "relu", "tanh": "tanh"}


def edge_model_args(model: ForecastModel) -> dict[str, Any]:
    """Keyword arguments of ``shared.edge_model.pack_model`` (plain floats, no numpy)."""
    c = len(model.channels)
    if model.spec.output != "linear":
        raise EdgeExportError(f"only forecast models run on boards, not {model.spec.output!r}")
    if not 1 <= model.window <= 255:
        raise EdgeExportError(f"window {model.window} is outside 1..255")
    if not 1 <= c <= 16:
        raise EdgeExportError(f"{c} channels is outside 1..16")
    try:
        spec, weights = model.export_network()
    except (ValueError, KeyError) as exc:
        raise EdgeExportError(f"network {model.spec.sizes} cannot be folded: {exc}") from exc
    n_in = model.window * c + (edge_model.CALENDAR_INPUTS if model.calendar else 0)
    if spec.sizes[0] != n_in or spec.sizes[-1] != model.horizon * c:
        raise EdgeExportError(
            f"network {spec.sizes} does not match window {model.window} x {c} "
            f"and horizon {model.horizon}"
        )
    if spec.n_layers > edge_model.MAX_LAYERS:
        raise EdgeExportError(f"{spec.n_layers} layers exceed {edge_model.MAX_LAYERS}")
    if any(s > edge_model.MAX_WIDTH for s in spec.sizes[1:]):
        raise EdgeExportError(f"layer widths {spec.sizes[1:]} exceed {edge_model.MAX_WIDTH}")
    n_bytes = (
        20
        + 12 * c
        + sum(
            6 + 4 * (spec.sizes[i] * spec.sizes[i + 1] + spec.sizes[i + 1])
            for i in range(spec.n_layers)
        )
        + (6 + 4 * spec.sizes[0] * spec.sizes[-1] if spec.skip else 0)
    )
    if n_bytes > edge_model.MAX_MODEL_BYTES:
        raise EdgeExportError(
            f"model of {n_bytes} bytes exceeds the boards' {edge_model.MAX_MODEL_BYTES}"
        )
    layers = []
    for i in range(spec.n_layers):
        act = "linear" if i == spec.n_layers - 1 else ACTIVATION_NAMES[spec.activation]
        w = np.asarray(weights[f"layers.{i}.weight"], np.float32)
        b = np.asarray(weights[f"layers.{i}.bias"], np.float32)
        layers.append((w.reshape(-1).tolist(), b.tolist(), act))
    return {
        "window": int(model.window),
        "mean": [float(v) for v in model.scaler.mean],
        "std": [float(v) for v in model.scaler.std],
        "resid_scale": [float(v) for v in model.residual_scale],
        "threshold": float(model.threshold),
        "layers": layers,
        "linear": (
            np.asarray(weights["skip.weight"], np.float32).reshape(-1).tolist()
            if spec.skip
            else None
        ),
        "calendar": bool(model.calendar),
    }


def edge_model_bytes(model: ForecastModel) -> bytes:
    """The ``LEM1`` bytes of ``model``, ready for the retained ``<device>/model`` topic."""
    try:
        return bytes(edge_model.pack_model(**edge_model_args(model)))
    except ProtocolError as exc:
        raise EdgeExportError(f"cannot pack model for the boards: {exc}") from exc
