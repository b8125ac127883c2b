"""Write a trained MLP as a ``.tflite`` flatbuffer, without TensorFlow.

The schema is TensorFlow Lite's ``schema.fbs``; tables are built with the ``flatbuffers``
runtime using the field slots of the ``tflite`` package's generated readers (Model,
SubGraph, Tensor, Operator, OperatorCode, Buffer, QuantizationParameters). Rules the
runtime enforces: file identifier ``TFL3``, buffer 0 is the empty sentinel, and an
operator code sets both ``deprecated_builtin_code`` (int8) and ``builtin_code``.

Graph: one FULLY_CONNECTED per layer (weights stored (out, in)), ReLU fused into the
layer; tanh and softmax are separate ops because the float kernel ignores a fused TANH.
A linear path (``MLPSpec.skip``) is one more FULLY_CONNECTED from the input, ADDed to the
last layer's output (float32 only).
With calibration data, post-training int8 quantization: QUANTIZE in, int8 FC with int8
symmetric per-tensor weights and int32 biases, DEQUANTIZE out; I/O stays float32.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import flatbuffers
import numpy as np

from gateway.errors import ExportError
from gateway.learning.mlp import MLPSpec, Weights, check_weights

# BuiltinOperator codes (schema.fbs)
OP_ADD = 0
OP_DEQUANTIZE = 6
OP_FULLY_CONNECTED = 9
OP_SOFTMAX = 25
OP_TANH = 28
OP_QUANTIZE = 114
# TensorType
FLOAT32, INT32, INT8 = 0, 2, 9
# ActivationFunctionType
ACT_NONE, ACT_RELU = 0, 1
# BuiltinOptions union tags
OPTIONS_FULLY_CONNECTED = 8
OPTIONS_SOFTMAX = 9
SCHEMA_VERSION = 3
# op versions matching the tensor types used (the runtime accepts these ranges)
OP_VERSION = {
    (OP_ADD, FLOAT32): 1,
    (OP_FULLY_CONNECTED, FLOAT32): 1,
    (OP_FULLY_CONNECTED, INT8): 4,
    (OP_SOFTMAX, FLOAT32): 1,
    (OP_SOFTMAX, INT8): 2,
    (OP_TANH, FLOAT32): 1,
    (OP_TANH, INT8): 2,
    (OP_QUANTIZE, INT8): 2,
    (OP_DEQUANTIZE, INT8): 2,
}


@dataclass
class _Tensor:
    name: str
    shape: list[int]
    dtype: int
    buffer: int = 0
    scale: float | None = None
    zero_point: int = 0
    signature: list[int] | None = None


@dataclass
class _Op:
    code: int
    inputs: list[int]
    outputs: list[int]
    options: int = 0  # union tag
    fused: int = ACT_NONE


@dataclass
class _Graph:
    tensors: list[_Tensor] = field(default_factory=list)
    buffers: list[bytes] = field(default_factory=lambda: [b""])
    ops: list[_Op] = field(default_factory=list)

    def tensor(self, t: _Tensor, data: np.ndarray | None = None) -> int:
        if data is not None:
            self.buffers.append(np.ascontiguousarray(data).tobytes())
            t.buffer = len(self.buffers) - 1
        self.tensors.append(t)
        return len(self.tensors) - 1


def _int_vector(b: flatbuffers.Builder, values: list[int]) -> int:
    b.StartVector(4, len(values), 4)
    for v in reversed(values):
        b.PrependInt32(v)
    return int(b.EndVector())


def _offset_vector(b: flatbuffers.Builder, offsets: list[int]) -> int:
    b.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return int(b.EndVector())


def _serialize(graph: _Graph, input_ids: list[int], output_ids: list[int]) -> bytes:
    b = flatbuffers.Builder(1024)
    # Buffers (data aligned to 16 bytes for the kernels)
    buffer_offs = []
    for data in graph.buffers:
        data_off = None
        if data:
            b.StartVector(1, len(data), 16)
            b.head = b.head - len(data)
            b.Bytes[b.head : b.head + len(data)] = data
            data_off = b.EndVector()
        b.StartObject(3)
        if data_off is not None:
            b.PrependUOffsetTRelativeSlot(0, data_off, 0)
        buffer_offs.append(b.EndObject())
    # Tensors
    tensor_offs = []
    for t in graph.tensors:
        name_off = b.CreateString(t.name)
        shape_off = _int_vector(b, t.shape)
        sig_off = _int_vector(b, t.signature) if t.signature else None
        quant_off = None
        if t.scale is not None:
            scale_off = b.CreateNumpyVector(np.asarray([t.scale], np.float32))
            zp_off = b.CreateNumpyVector(np.asarray([t.zero_point], np.int64))
            b.StartObject(7)
            b.PrependUOffsetTRelativeSlot(2, scale_off, 0)
            b.PrependUOffsetTRelativeSlot(3, zp_off, 0)
            b.PrependInt32Slot(6, 0, 0)
            quant_off = b.EndObject()
        b.StartObject(11)
        b.PrependUOffsetTRelativeSlot(0, shape_off, 0)
        b.PrependInt8Slot(1, t.dtype, -1)
        b.PrependUint32Slot(2, t.buffer, 0xFFFFFFFF)
        b.PrependUOffsetTRelativeSlot(3, name_off, 0)
        if quant_off is not None:
            b.PrependUOffsetTRelativeSlot(4, quant_off, 0)
        if sig_off is not None:
            b.PrependUOffsetTRelativeSlot(7, sig_off, 0)
        tensor_offs.append(b.EndObject())
    # Operator codes (one per distinct (code, version))
    codes: list[tuple[int, int]] = []
    op_index = []
    for op in graph.ops:
        dtype = graph.tensors[op.inputs[0]].dtype
        if op.code == OP_QUANTIZE:
            dtype = graph.tensors[op.outputs[0]].dtype
        key = (op.code, OP_VERSION.get((op.code, dtype), 1))
        if key not in codes:
            codes.append(key)
        op_index.append(codes.index(key))
    code_offs = []
    for code, version in codes:
        b.StartObject(4)
        b.PrependInt8Slot(0, min(code, 127), -1)  # deprecated_builtin_code
        b.PrependInt32Slot(2, version, -1)
        b.PrependInt32Slot(3, code, -1)  # builtin_code
        code_offs.append(b.EndObject())
    # Operators
    op_offs = []
    for op, index in zip(graph.ops, op_index, strict=True):
        options_off = None
        if op.options == OPTIONS_FULLY_CONNECTED:
            b.StartObject(5)
            b.PrependInt8Slot(0, op.fused, -1)
            b.PrependInt8Slot(1, 0, -1)  # weights_format DEFAULT
            b.PrependBoolSlot(2, False, True)  # keep_num_dims
            options_off = b.EndObject()
        elif op.options == OPTIONS_SOFTMAX:
            b.StartObject(1)
            b.PrependFloat32Slot(0, 1.0, 0.0)  # beta
            options_off = b.EndObject()
        in_off = _int_vector(b, op.inputs)
        out_off = _int_vector(b, op.outputs)
        b.StartObject(9)
        b.PrependUint32Slot(0, index, 0xFFFFFFFF)
        b.PrependUOffsetTRelativeSlot(1, in_off, 0)
        b.PrependUOffsetTRelativeSlot(2, out_off, 0)
        if options_off is not None:
            b.PrependUint8Slot(3, op.options, 0xFF)
            b.PrependUOffsetTRelativeSlot(4, options_off, 0)
        op_offs.append(b.EndObject())
    tensors_vec = _offset_vector(b, tensor_offs)
    inputs_vec = _int_vector(b, input_ids)
    outputs_vec = _int_vector(b, output_ids)
    ops_vec = _offset_vector(b, op_offs)
    sg_name = b.CreateString("main")
    b.StartObject(5)
    b.PrependUOffsetTRelativeSlot(0, tensors_vec, 0)
    b.PrependUOffsetTRelativeSlot(1, inputs_vec, 0)
    b.PrependUOffsetTRelativeSlot(2, outputs_vec, 0)
    b.PrependUOffsetTRelativeSlot(3, ops_vec, 0)
    b.PrependUOffsetTRelativeSlot(4, sg_name, 0)
    subgraph = b.EndObject()
    # each flatbuffers table is written slot by slot in the schema's order, as the
    # SubGraph above: the repetition is the format's
    codes_vec = _offset_vector(b, code_offs)
    subgraphs_vec = _offset_vector(b, [subgraph])
    buffers_vec = _offset_vector(b, buffer_offs)
    description = b.CreateString("learnae-edge mlp")
    b.StartObject(8)
    b.PrependUint32Slot(0, SCHEMA_VERSION, 0)
    b.PrependUOffsetTRelativeSlot(1, codes_vec, 0)
    b.PrependUOffsetTRelativeSlot(2, subgraphs_vec, 0)
    b.PrependUOffsetTRelativeSlot(3, description, 0)
    b.PrependUOffsetTRelativeSlot(4, buffers_vec, 0)
    model = b.EndObject()
    b.Finish(model, file_identifier=b"TFL3")
    return bytes(b.Output())


def _asym_params(lo: float, hi: float) -> tuple[float, int]:
    """int8 scale and zero point covering [lo, hi] (widened to include 0)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo < 1e-12:
        hi = lo + 1e-6
    scale = (hi - lo) / 255.0
    zero_point = int(np.clip(round(-128 - lo / scale), -128, 127))
    return float(scale), zero_point


def _calibrate(spec: MLPSpec, weights: Weights, x: np.ndarray) -> list[tuple[float, float]]:
    """(min, max) of the input and of every layer's FC output (after a fused ReLU)."""
    a = np.asarray(x, np.float32)
    ranges = [(float(a.min()), float(a.max()))]
    for i in range(spec.n_layers):
        a = a @ weights[f"layers.{i}.weight"] + weights[f"layers.{i}.bias"]
        hidden = i < spec.n_layers - 1
        if hidden and spec.activation == "relu":
            a = np.maximum(a, 0.0)
        ranges.append((float(a.min()), float(a.max())))
        if hidden and spec.activation == "tanh":
            a = np.tanh(a)
    return ranges


def export_tflite(spec: MLPSpec, weights: Weights, calibration: np.ndarray | None = None) -> bytes:
    """The model as ``.tflite`` bytes: float32, or int8 when ``calibration`` inputs are given.

    Input shape is [1, inputs] with a dynamic batch dimension (resize it in the interpreter).
    """
    check_weights(spec, weights)
    weights = {k: np.asarray(v, np.float32) for k, v in weights.items()}
    quant = calibration is not None
    if quant and spec.skip:
        raise ExportError("int8 export of a network with a linear path is not supported")
    if quant:
        calibration = np.asarray(calibration, np.float32)
        if calibration.ndim != 2 or calibration.shape[1] != spec.sizes[0] or not len(calibration):
            raise ExportError(
                f"calibration must have shape (n>0, {spec.sizes[0]}), got {calibration.shape}"
            )
        ranges = _calibrate(spec, weights, calibration)
    g = _Graph()
    n_in = spec.sizes[0]
    current = g.tensor(_Tensor("input", [1, n_in], FLOAT32, signature=[-1, n_in]))
    model_input = current
    if spec.skip and spec.output != "linear":
        raise ExportError(f"a linear path needs a linear output, got {spec.output!r}")
    if quant:
        scale, zp = _asym_params(*ranges[0])
        q = g.tensor(
            _Tensor("input_q", [1, n_in], INT8, scale=scale, zero_point=zp, signature=[-1, n_in])
        )
        g.ops.append(_Op(OP_QUANTIZE, [current], [q]))
        current = q
    for i in range(spec.n_layers):
        fan_in, fan_out = spec.sizes[i], spec.sizes[i + 1]
        w = weights[f"layers.{i}.weight"].T  # TFLite stores (out, in)
        bias = weights[f"layers.{i}.bias"]
        hidden = i < spec.n_layers - 1
        fused = ACT_RELU if hidden and spec.activation == "relu" else ACT_NONE
        if quant:
            in_scale = g.tensors[current].scale or 1.0
            w_scale = max(float(np.abs(w).max()), 1e-8) / 127.0
            w_q = np.clip(np.rint(w / w_scale), -127, 127).astype(np.int8)
            b_scale = in_scale * w_scale
            b_q = np.rint(bias / b_scale).astype(np.int32)
            w_id = g.tensor(
                _Tensor(f"layers.{i}.weight", [fan_out, fan_in], INT8, scale=w_scale), w_q
            )
            b_id = g.tensor(_Tensor(f"layers.{i}.bias", [fan_out], INT32, scale=b_scale), b_q)
            o_scale, o_zp = _asym_params(*ranges[i + 1])
            out = g.tensor(
                _Tensor(
                    f"layers.{i}.out",
                    [1, fan_out],
                    INT8,
                    scale=o_scale,
                    zero_point=o_zp,
                    signature=[-1, fan_out],
                )
            )
        else:
            w_id = g.tensor(_Tensor(f"layers.{i}.weight", [fan_out, fan_in], FLOAT32), w)
            b_id = g.tensor(_Tensor(f"layers.{i}.bias", [fan_out], FLOAT32), bias)
            out = g.tensor(
                _Tensor(f"layers.{i}.out", [1, fan_out], FLOAT32, signature=[-1, fan_out])
            )
        g.ops.append(
            _Op(OP_FULLY_CONNECTED, [current, w_id, b_id], [out], OPTIONS_FULLY_CONNECTED, fused)
        )
        current = out
        if not hidden and spec.skip:
            n_out = spec.sizes[-1]
            s_id = g.tensor(
                _Tensor("skip.weight", [n_out, n_in], FLOAT32), weights["skip.weight"].T
            )
            zero = g.tensor(_Tensor("skip.bias", [n_out], FLOAT32), np.zeros(n_out, np.float32))
            s_out = g.tensor(_Tensor("skip.out", [1, n_out], FLOAT32, signature=[-1, n_out]))
            g.ops.append(
                _Op(OP_FULLY_CONNECTED, [model_input, s_id, zero], [s_out],
                    OPTIONS_FULLY_CONNECTED, ACT_NONE)
            )
            total = g.tensor(_Tensor("output", [1, n_out], FLOAT32, signature=[-1, n_out]))
            g.ops.append(_Op(OP_ADD, [current, s_out], [total]))
            current = total
        extra = OP_TANH if hidden and spec.activation == "tanh" else None
        if not hidden and spec.output == "softmax":
            extra = OP_SOFTMAX
        if extra is not None:
            name = f"layers.{i}.{'tanh' if extra == OP_TANH else 'softmax'}"
            if quant:  # fixed output ranges the int8 kernels require
                scale, zp = (1 / 128, 0) if extra == OP_TANH else (1 / 256, -128)
                t = _Tensor(
                    name, [1, fan_out], INT8, scale=scale, zero_point=zp, signature=[-1, fan_out]
                )
            else:
                t = _Tensor(name, [1, fan_out], FLOAT32, signature=[-1, fan_out])
            nxt = g.tensor(t)
            g.ops.append(
                _Op(extra, [current], [nxt], OPTIONS_SOFTMAX if extra == OP_SOFTMAX else 0)
            )
            current = nxt
    if quant:
        out_f = g.tensor(
            _Tensor("output", [1, spec.sizes[-1]], FLOAT32, signature=[-1, spec.sizes[-1]])
        )
        g.ops.append(_Op(OP_DEQUANTIZE, [current], [out_f]))
        current = out_f
    return _serialize(g, [model_input], [current])


def run_tflite(model: bytes, x: np.ndarray) -> np.ndarray:
    """Run rows of ``x`` through the LiteRT interpreter (needs ``ai-edge-litert``)."""
    from ai_edge_litert.interpreter import Interpreter

    x = np.ascontiguousarray(x, np.float32)
    interpreter = Interpreter(model_content=model)
    inp = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(inp["index"], list(x.shape), strict=False)
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], x)
    interpreter.invoke()
    return np.array(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))
