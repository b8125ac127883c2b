"""Edge model ``LEM1``: a small dense network a board runs to score each reading.

Runs unchanged under CPython and MicroPython (struct, binascii, array only).
The gateway calls ``pack_model``; a board calls ``parse_model`` on the bytes
of its retained model message and feeds each reading to ``Model.score``.

Layout (little-endian; documented byte by byte in docs/protocol.md)::

    "LEM1" | u8 W | u8 C | u8 L | u8 flags | f32 threshold
    C x f32 mean | C x f32 std | C x f32 residual scale
    L x ( u16 in | u16 out | u8 activation | u8 pad=0 | in*out f32 weights (row-major in x out)
          | out f32 bias )
    [flags & 1: u16 in | u16 out | u8 0 | u8 0 | in*out f32 weights: the linear path]
    u32 CRC32 (binascii.crc32) of every preceding byte

The input is the last W standardized readings, oldest first, record-major
(W*C values), then with flags & 2 (FLAG_CALENDAR) four calendar values of the
predicted reading's time t (unix seconds, UTC): sin, cos of 2pi (t mod 86400) / 86400
and sin, cos of 2pi ((t // 86400 + 3) mod 7) / 7. The output is the last layer's
plus, with flags & 1 (FLAG_LINEAR), the input times the linear path's weights: H*C
standardized predictions of the next H readings, step 1's C values first (H = outputs
/ C). score = max over channels of |x_std - step-1 pred| / residual_scale; a reading
is flagged when score > threshold. A calendar model scores only readings that carry
their time. Flags 0 is the original format: no linear path, no calendar, one step.
A channel value whose own score exceeds the threshold enters the window as its
step-1 prediction, not as read, so the windows after a spike do not hold it (one
spike, one flag). A missing value (None) is left out of the score and enters the
window as its prediction (as the channel mean, 0 standardized, while there is no
prediction: the window still filling, or a calendar model without the time). When
a third reading in a row has a replaced value (``MAX_REPLACED``), the run is taken
as the signal (a turn, a new level): the window takes those readings as they were read.
"""

import math
import struct
import sys
from array import array
from binascii import crc32

from shared.errors import ProtocolError

MAGIC = b"LEM1"
HEADER_SIZE = 12
LAYER_HEADER_SIZE = 6
ACTIVATIONS = ("linear", "relu", "tanh")
MAX_MODEL_BYTES = 65536
MAX_LAYERS = 8
MAX_WIDTH = 256
FLAG_LINEAR = 1
FLAG_CALENDAR = 2
CALENDAR_INPUTS = 4
MAX_REPLACED = 2  # readings in a row replaced by predictions before a run is taken as read


def _floats(name, xs, n):
    xs = list(xs)
    if len(xs) != n:
        raise ProtocolError("%s has %d values, expected %d" % (name, len(xs), n))
    out = []
    for x in xs:
        x = float(x)
        if x != x or x in (float("inf"), float("-inf")):
            raise ProtocolError("%s value %r is not finite" % (name, x))
        out.append(x)
    return out


def _flat(name, rows, n_in, n_out):
    # weights: a list of n_in rows of n_out, or a flat list of n_in*n_out
    rows = list(rows)
    if rows and hasattr(rows[0], "__len__"):
        if len(rows) != n_in:
            raise ProtocolError("%s has %d rows, expected %d" % (name, len(rows), n_in))
        flat = []
        for r in rows:
            flat.extend(list(r))
        rows = flat
    return _floats(name, rows, n_in * n_out)


def pack_model(window, mean, std, resid_scale, threshold, layers, linear=None, calendar=False):
    """Serialize a model; ``layers`` is a list of (weights in x out, bias, activation name).

    ``linear``: weights (inputs x outputs) of the linear path from the input to the output;
    ``calendar``: the input ends with the four calendar values (see the module doc).
    """
    if not isinstance(window, int) or not 1 <= window <= 255:
        raise ProtocolError("window %r is outside 1..255" % (window,))
    mean = _floats("mean", mean, len(list(mean)))
    c = len(mean)
    if not 1 <= c <= 16:
        raise ProtocolError("channel count %d is outside 1..16" % c)
    std = _floats("std", std, c)
    resid_scale = _floats("resid_scale", resid_scale, c)
    for name, xs in (("std", std), ("resid_scale", resid_scale)):
        for x in xs:
            if not x > 0:
                raise ProtocolError("%s value %r is not positive" % (name, x))
    threshold = _floats("threshold", [threshold], 1)[0]
    if not 1 <= len(layers) <= MAX_LAYERS:
        raise ProtocolError("layer count %d is outside 1..%d" % (len(layers), MAX_LAYERS))
    flags = (FLAG_LINEAR if linear is not None else 0) | (FLAG_CALENDAR if calendar else 0)
    parts = [MAGIC, struct.pack("<BBBBf", window, c, len(layers), flags, threshold)]
    parts.append(struct.pack("<%df" % c, *mean))
    parts.append(struct.pack("<%df" % c, *std))
    parts.append(struct.pack("<%df" % c, *resid_scale))
    n_inputs = window * c + (CALENDAR_INPUTS if calendar else 0)
    width = n_inputs
    for i, layer in enumerate(layers):
        weights, bias, act = layer
        if act not in ACTIVATIONS:
            raise ProtocolError("layer %d activation %r is not one of %s"
                                % (i, act, ", ".join(ACTIVATIONS)))
        bias = _floats("layer %d bias" % i, bias, len(list(bias)))
        n_out = len(bias)
        if not 1 <= n_out <= MAX_WIDTH:
            raise ProtocolError("layer %d width %d is outside 1..%d" % (i, n_out, MAX_WIDTH))
        flat = _flat("layer %d weights" % i, weights, width, n_out)
        parts.append(struct.pack("<HHBB", width, n_out, ACTIVATIONS.index(act), 0))
        parts.append(struct.pack("<%df" % len(flat), *flat))
        parts.append(struct.pack("<%df" % n_out, *bias))
        width = n_out
    if width % c:
        raise ProtocolError("last layer has %d outputs, not a multiple of %d channels"
                            % (width, c))
    if linear is not None:
        flat = _flat("linear path weights", linear, n_inputs, width)
        parts.append(struct.pack("<HHBB", n_inputs, width, 0, 0))
        parts.append(struct.pack("<%df" % len(flat), *flat))
    body = b"".join(parts)
    return body + struct.pack("<I", crc32(body) & 0xFFFFFFFF)


_INF = float("inf")
_RAW_F32 = (sys.implementation.name == "micropython"
            and struct.pack("f", 1.0) == struct.pack("<f", 1.0))


def _read_floats(data, off, n):
    if _RAW_F32:
        # MicroPython extends an array by raw bytes from a memoryview: no list or tuple of
        # n boxed floats on the way, which a 32 KB heap cannot hold for a model's layer
        out = array("f")
        out.extend(memoryview(data)[off:off + 4 * n])
    else:
        out = array("f", struct.unpack_from("<%df" % n, data, off))
    for i in range(n):
        x = out[i]
        if x != x or x == _INF or x == -_INF:
            raise ProtocolError("float at byte %d is not finite" % (off + 4 * i))
    return out


class Model:
    """A parsed model plus the rolling window and scratch buffers, allocated once."""

    def __init__(self, window, channels, threshold, mean, std, resid, layers, crc,
                 linear=None, calendar=False):
        self.window = window
        self.channels = channels
        self.threshold = threshold
        self.mean = mean
        self.std = std
        self.resid = resid
        self.layers = layers  # [(n_in, n_out, act, weights array, bias array, out array)]
        self.crc = crc
        self.linear = linear  # None or (n_in, n_out, weights array)
        self.calendar = calendar
        self.horizon = layers[-1][1] // channels
        self.n_window = window * channels
        # standardized window, then the calendar values of the reading being predicted
        self.x = array("f", [0.0] * (self.n_window + (CALENDAR_INPUTS if calendar else 0)))
        self.raw = array("f", [0.0] * self.n_window)  # the window, as read
        self.filled = 0
        self.run = 0  # consecutive readings with a replaced value

    def reset(self):
        self.filled = 0
        self.run = 0

    def _forward(self):
        src = self.x
        for n_in, n_out, act, w, b, out in self.layers:
            for j in range(n_out):
                acc = b[j]
                k = j
                for i in range(n_in):
                    acc += src[i] * w[k]
                    k += n_out
                if act == 1:
                    acc = acc if acc > 0.0 else 0.0
                elif act == 2:
                    acc = _tanh(acc)
                out[j] = acc
            src = out
        if self.linear is not None:
            n_in, n_out, w = self.linear
            x = self.x
            for j in range(n_out):
                acc = 0.0
                k = j
                for i in range(n_in):
                    acc += x[i] * w[k]
                    k += n_out
                src[j] += acc
        return src

    def set_time(self, t):
        # calendar inputs of the reading at unix time t (integer arithmetic, as the gateway)
        t = int(t)
        n = self.n_window
        tod = 6.283185307179586 * (t % 86400) / 86400
        dow = 6.283185307179586 * ((t // 86400 + 3) % 7) / 7
        x = self.x
        x[n] = math.sin(tod)
        x[n + 1] = math.cos(tod)
        x[n + 2] = math.sin(dow)
        x[n + 3] = math.cos(dow)

    def score(self, values, t=None):
        """Score one reading (a list of C floats or None) taken at unix time ``t``;
        push it into the window.

        Returns the anomaly score, or None while the window is not yet full
        (or when every value is missing, or a calendar model gets no time).
        """
        c = self.channels
        result = None
        pred = None  # step-1 predictions (the first C outputs), when the model can predict
        if self.filled >= self.window:
            if not self.calendar:
                pred = self._forward()
            elif t is not None and t > 0:
                self.set_time(t)
                pred = self._forward()
        if pred is not None:
            for j in range(c):
                v = values[j]
                if v is None:
                    continue
                s = abs((v - self.mean[j]) / self.std[j] - pred[j]) / self.resid[j]
                if result is None or s > result:
                    result = s
        x = self.x
        raw = self.raw
        n = self.n_window
        for i in range(n - c):
            x[i] = x[i + c]
            raw[i] = raw[i + c]
        th = self.threshold
        replaced = False
        for j in range(c):
            v = values[j]
            if v is None:
                # a gap enters as the prediction (the channel mean while there is none)
                z = pred[j] if pred is not None else 0.0
                r = z
            else:
                z = (v - self.mean[j]) / self.std[j]
                r = z
                if pred is not None and abs(z - pred[j]) / self.resid[j] > th:
                    # a flagged value is replaced by its prediction, so one spike is
                    # one alarm and not one per later window that still holds it
                    z = pred[j]
                    replaced = True
            x[n - c + j] = z
            raw[n - c + j] = r
        if replaced:
            self.run += 1
            if self.run > MAX_REPLACED:
                # a deviation that lasts is the signal (a turn, a new level): the window
                # takes the readings of the run as they were read, and flags stop
                k = n - c * min(self.run, self.window)
                for i in range(k, n):
                    x[i] = raw[i]
                self.run = 0
        else:
            self.run = 0
        if self.filled < self.window:
            self.filled += 1
        return result

    def flagged(self, score):
        return score is not None and score > self.threshold


def _tanh(x):
    if x > 20.0:
        return 1.0
    if x < -20.0:
        return -1.0
    e = 2.718281828459045 ** (2.0 * x)
    return (e - 1.0) / (e + 1.0)


def parse_model(data, max_bytes=MAX_MODEL_BYTES):
    """Check and parse LEM1 bytes; any defect raises ProtocolError naming it."""
    size = len(data)
    if size > max_bytes:
        raise ProtocolError("model of %d bytes exceeds %d" % (size, max_bytes))
    if size < HEADER_SIZE + 4:
        raise ProtocolError("model of %d bytes is shorter than header and CRC" % size)
    if bytes(data[0:4]) != MAGIC:
        raise ProtocolError("model magic %r is not %r" % (bytes(data[0:4]), MAGIC))
    want = struct.unpack_from("<I", data, size - 4)[0]
    got = crc32(data[0:size - 4]) & 0xFFFFFFFF
    if want != got:
        raise ProtocolError("model CRC32 0x%08x does not match computed 0x%08x" % (want, got))
    w, c, n_layers, flags, threshold = struct.unpack_from("<BBBBf", data, 4)
    if flags & ~(FLAG_LINEAR | FLAG_CALENDAR):
        raise ProtocolError("model flags 0x%02x has unknown bits" % flags)
    if not w or not 1 <= c <= 16:
        raise ProtocolError("model window %d / channels %d out of range" % (w, c))
    if not 1 <= n_layers <= MAX_LAYERS:
        raise ProtocolError("model layer count %d is outside 1..%d" % (n_layers, MAX_LAYERS))
    if threshold != threshold:
        raise ProtocolError("model threshold is NaN")
    off = HEADER_SIZE
    end = size - 4
    if off + 12 * c > end:
        raise ProtocolError("model of %d bytes ends inside the normalization block" % size)
    mean = _read_floats(data, off, c)
    std = _read_floats(data, off + 4 * c, c)
    resid = _read_floats(data, off + 8 * c, c)
    off += 12 * c
    for name, xs in (("std", std), ("residual scale", resid)):
        for j in range(c):
            if not xs[j] > 0:
                raise ProtocolError("model %s of channel %d is %r, not positive" % (name, j, xs[j]))
    layers = []
    n_inputs = w * c + (CALENDAR_INPUTS if flags & FLAG_CALENDAR else 0)
    width = n_inputs
    for k in range(n_layers):
        if off + LAYER_HEADER_SIZE > end:
            raise ProtocolError("model ends inside layer %d header" % k)
        n_in, n_out, act, pad = struct.unpack_from("<HHBB", data, off)
        off += LAYER_HEADER_SIZE
        if n_in != width:
            raise ProtocolError("layer %d input width %d, expected %d" % (k, n_in, width))
        if not 1 <= n_out <= MAX_WIDTH:
            raise ProtocolError("layer %d width %d is outside 1..%d" % (k, n_out, MAX_WIDTH))
        if act > 2 or pad:
            raise ProtocolError("layer %d activation %d / pad %d invalid" % (k, act, pad))
        need = 4 * (n_in * n_out + n_out)
        if off + need > end:
            raise ProtocolError("model ends inside layer %d weights" % k)
        weights = _read_floats(data, off, n_in * n_out)
        bias = _read_floats(data, off + 4 * n_in * n_out, n_out)
        off += need
        layers.append((n_in, n_out, act, weights, bias, array("f", [0.0] * n_out)))
        width = n_out
    if width % c:
        raise ProtocolError("last layer has %d outputs, not a multiple of %d channels"
                            % (width, c))
    linear = None
    if flags & FLAG_LINEAR:
        if off + LAYER_HEADER_SIZE > end:
            raise ProtocolError("model ends inside the linear path header")
        n_in, n_out, act, pad = struct.unpack_from("<HHBB", data, off)
        off += LAYER_HEADER_SIZE
        if n_in != n_inputs or n_out != width or act or pad:
            raise ProtocolError("linear path %d x %d (act %d, pad %d), expected %d x %d"
                                % (n_in, n_out, act, pad, n_inputs, width))
        if off + 4 * n_in * n_out > end:
            raise ProtocolError("model ends inside the linear path weights")
        linear = (n_in, n_out, _read_floats(data, off, n_in * n_out))
        off += 4 * n_in * n_out
    if off != end:
        raise ProtocolError("model has %d bytes after the last layer" % (end - off))
    return Model(w, c, threshold, mean, std, resid, layers, want, linear,
                 bool(flags & FLAG_CALENDAR))


def predict(model, window_rows, t=None):
    """Predictions (standardized, H*C) for W readings, oldest first, of a reading at ``t``."""
    model.reset()
    for row in window_rows:
        model.score(row)
    if model.calendar:
        model.set_time(t)
    return list(model._forward())
