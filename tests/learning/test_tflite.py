"""TFLite export written without TensorFlow, run in the LiteRT interpreter against numpy."""

from __future__ import annotations

import numpy as np
import pytest
import tflite

from gateway.learning.mlp import MLPSpec, TrainConfig, init_weights, predict, train
from gateway.learning.tflite_export import ExportError, export_tflite, run_tflite

pytest.importorskip("ai_edge_litert")

# int8 outputs vs float numpy, as fractions of the output range, on the calibration
# distribution (inputs outside the calibrated range saturate, as in any int8 model)
INT8_MAX_ERR = 0.03
INT8_MEAN_ERR = 0.01


def _trained(spec: MLPSpec, seed: int = 0) -> tuple[dict, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(400, spec.sizes[0])).astype(np.float32)
    if spec.output == "softmax":
        y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5).astype(int)
    else:
        y = np.tanh(x[:, : spec.sizes[-1]] + 0.5 * x[:, -spec.sizes[-1] :]).astype(np.float32)
    weights = train(spec, init_weights(spec, seed), x, y, TrainConfig(epochs=5)).weights
    return weights, x


@pytest.mark.parametrize(
    "spec",
    [
        MLPSpec((24, 32, 3), "relu", "linear"),
        MLPSpec((24, 16, 16, 3), "tanh", "linear"),
        MLPSpec((10, 20, 3), "relu", "softmax"),
        MLPSpec((10, 20, 3), "tanh", "softmax"),
    ],
    ids=lambda s: f"{s.activation}-{s.output}-{len(s.sizes) - 2}h",
)
def test_float32_export_matches_numpy(spec: MLPSpec) -> None:
    weights, x = _trained(spec)
    model = export_tflite(spec, weights)
    out = run_tflite(model, x[:100])
    assert out.shape == (100, spec.sizes[-1])
    assert float(np.abs(out - predict(spec, weights, x[:100])).max()) <= 1e-5
    one = run_tflite(model, x[:1])  # batch of one, the serving case
    assert float(np.abs(one - predict(spec, weights, x[:1])).max()) <= 1e-5


def test_flatbuffer_follows_the_schema_rules() -> None:
    spec = MLPSpec((6, 5, 2), "tanh", "softmax")
    data = export_tflite(spec, init_weights(spec, 0))
    assert data[4:8] == b"TFL3"
    model = tflite.Model.GetRootAsModel(data, 0)
    assert model.Version() == 3
    assert model.Buffers(0).DataLength() == 0
    codes = {
        (model.OperatorCodes(i).DeprecatedBuiltinCode(), model.OperatorCodes(i).BuiltinCode())
        for i in range(model.OperatorCodesLength())
    }
    assert codes == {(9, 9), (28, 28), (25, 25)}  # FULLY_CONNECTED, TANH, SOFTMAX
    graph = model.Subgraphs(0)
    assert graph.OperatorsLength() == 4  # FC, TANH, FC, SOFTMAX
    weight = graph.Tensors(graph.Operators(0).Inputs(1))
    assert weight.ShapeAsNumpy().tolist() == [5, 6]  # TFLite keeps (out, in)
    buf = model.Buffers(weight.Buffer()).DataAsNumpy()
    np.testing.assert_array_equal(
        buf.view(np.float32).reshape(5, 6), init_weights(spec, 0)["layers.0.weight"].T
    )


@pytest.mark.parametrize(
    "spec",
    [
        MLPSpec((24, 32, 3), "relu", "linear"),
        MLPSpec((10, 20, 3), "tanh", "softmax"),
        MLPSpec((10, 16, 16, 3), "relu", "softmax"),
    ],
    ids=["relu-linear", "tanh-softmax", "relu-softmax-2h"],
)
def test_int8_quantization_within_tolerance(spec: MLPSpec) -> None:
    weights, x = _trained(spec, seed=1)
    calibration, held_out = x, x[::2]
    float_model = export_tflite(spec, weights)
    int8_model = export_tflite(spec, weights, calibration=calibration)
    assert len(int8_model) < len(float_model)
    ref = predict(spec, weights, held_out)
    out = run_tflite(int8_model, held_out)
    span = float(ref.max() - ref.min())
    assert float(np.abs(out - ref).max()) <= INT8_MAX_ERR * span
    assert float(np.abs(out - ref).mean()) <= INT8_MEAN_ERR * span
    if spec.output == "softmax":
        assert np.mean(out.argmax(1) == ref.argmax(1)) >= 0.97


def test_calibration_shape_is_checked() -> None:
    spec = MLPSpec((4, 3, 2))
    with pytest.raises(ExportError, match=r"\(n>0, 4\)"):
        export_tflite(spec, init_weights(spec, 0), calibration=np.zeros((3, 5)))
