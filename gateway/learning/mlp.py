"""A small multilayer perceptron trained with numpy: the gateway's only learner.

Why numpy and not a framework: the gateway is a Raspberry Pi; a dense network of a few
thousand weights trains in seconds with BLAS matmuls, and weights stay plain named
arrays that the peer layer can serialize (safetensors), hash and fuse.

Weights are ``{"layers.{i}.weight": (in, out), "layers.{i}.bias": (out,)}`` in float32,
plus ``"skip.weight": (inputs, outputs)`` when the spec has a linear path from the input
straight to the output (added to the last layer's output, before any softmax).
Training copies them into one flat float32 buffer (the given dict is never mutated), so
the Adam step is a handful of vectorised operations over every parameter at once, and
every forward/backward buffer is allocated once per call to ``train``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from gateway.errors import MLPError, TrainingDiverged

Weights = dict[str, np.ndarray]

ACTIVATIONS = ("relu", "tanh")
OUTPUTS = ("linear", "softmax")


@dataclass(frozen=True)
class MLPSpec:
    sizes: tuple[int, ...]  # (inputs, hidden..., outputs)
    activation: str = "relu"  # hidden activation: "relu" | "tanh"
    output: str = "linear"  # "linear" (MSE loss) | "softmax" (cross-entropy)
    skip: bool = False  # a linear path from the input to the output beside the hidden layers

    def __post_init__(self) -> None:
        if len(self.sizes) < 2 or any(int(s) < 1 for s in self.sizes):
            raise MLPError(f"MLPSpec.sizes must be >= 2 positive ints, got {self.sizes!r}")
        if self.activation not in ACTIVATIONS:
            raise MLPError(
                f"MLPSpec.activation must be one of {ACTIVATIONS}, got {self.activation!r}"
            )
        if self.output not in OUTPUTS:
            raise MLPError(f"MLPSpec.output must be one of {OUTPUTS}, got {self.output!r}")
        if self.output == "softmax" and self.sizes[-1] < 2:
            raise MLPError(f"softmax output needs >= 2 classes, got sizes {self.sizes!r}")

    @property
    def n_layers(self) -> int:
        return len(self.sizes) - 1

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Expected name -> shape of every weight array, in layer order."""
        out: dict[str, tuple[int, ...]] = {}
        for i in range(self.n_layers):
            out[f"layers.{i}.weight"] = (self.sizes[i], self.sizes[i + 1])
            out[f"layers.{i}.bias"] = (self.sizes[i + 1],)
        if self.skip:
            out["skip.weight"] = (self.sizes[0], self.sizes[-1])
        return out

    def to_dict(self) -> dict[str, object]:
        doc: dict[str, object] = {
            "sizes": list(self.sizes),
            "activation": self.activation,
            "output": self.output,
        }
        if self.skip:
            doc["skip"] = True
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, object]) -> MLPSpec:
        sizes = doc.get("sizes")
        if not isinstance(sizes, list | tuple):
            raise MLPError(f"MLPSpec.sizes must be a list, got {sizes!r}")
        return cls(
            sizes=tuple(int(s) for s in sizes),
            activation=str(doc.get("activation", "relu")),
            output=str(doc.get("output", "linear")),
            skip=bool(doc.get("skip", False)),
        )


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 1e-3
    l2: float = 0.0  # adds l2 * w to each weight gradient (biases excluded)
    seed: int = 0
    patience: int | None = None  # early stopping on validation loss; None = off
    validation_fraction: float = 0.0
    # with patience: the start weights compete too (epoch 0), so training never returns
    # weights worse on validation than those it was given
    keep_start: bool = False
    # linear outputs: None = squared error; a value = Huber loss, the squared error up to
    # this residual and linear beyond (outliers pull less; nearer the median, which MAE
    # rewards). Scaled to equal the squared error below the delta.
    huber_delta: float | None = None

    def __post_init__(self) -> None:
        if self.epochs < 0:
            raise MLPError(f"TrainConfig.epochs must be >= 0, got {self.epochs!r}")
        if self.batch_size < 1:
            raise MLPError(f"TrainConfig.batch_size must be >= 1, got {self.batch_size!r}")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise MLPError(f"TrainConfig.learning_rate must be > 0, got {self.learning_rate!r}")
        if not self.l2 >= 0:
            raise MLPError(f"TrainConfig.l2 must be >= 0, got {self.l2!r}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise MLPError(
                "TrainConfig.validation_fraction must be in [0, 1), "
                f"got {self.validation_fraction!r}"
            )
        if self.patience is not None and self.patience < 1:
            raise MLPError(f"TrainConfig.patience must be >= 1 or None, got {self.patience!r}")
        if self.huber_delta is not None and not (
            self.huber_delta > 0 and math.isfinite(self.huber_delta)
        ):
            raise MLPError(f"TrainConfig.huber_delta must be > 0 or None, got {self.huber_delta!r}")


@dataclass
class TrainResult:
    weights: Weights
    history: list[dict[str, float]] = field(default_factory=list)
    epochs_run: int = 0


def init_weights(spec: MLPSpec, seed: int) -> Weights:
    """PyTorch's default Linear init: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias."""
    rng = np.random.default_rng(seed)
    weights: Weights = {}
    for i in range(spec.n_layers):
        fan_in, fan_out = spec.sizes[i], spec.sizes[i + 1]
        bound = 1.0 / math.sqrt(fan_in)
        weights[f"layers.{i}.weight"] = rng.uniform(-bound, bound, (fan_in, fan_out)).astype(
            np.float32
        )
        weights[f"layers.{i}.bias"] = rng.uniform(-bound, bound, (fan_out,)).astype(np.float32)
    if spec.skip:
        weights["skip.weight"] = np.zeros((spec.sizes[0], spec.sizes[-1]), np.float32)
    return weights


def check_weights(spec: MLPSpec, weights: Weights) -> None:
    """Raise MLPError unless ``weights`` has exactly the spec's names, shapes, finite values."""
    expected = spec.shapes()
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    if missing or extra:
        raise MLPError(f"weights do not match spec {spec.sizes}: missing {missing}, extra {extra}")
    for name, shape in expected.items():
        arr = np.asarray(weights[name])
        if arr.shape != shape:
            raise MLPError(f"weights[{name!r}] has shape {arr.shape}, expected {shape}")
        if not np.all(np.isfinite(arr)):
            raise MLPError(f"weights[{name!r}] holds non-finite values")


def _activate(kind: str, z: np.ndarray) -> None:
    """Apply the hidden activation in place."""
    if kind == "relu":
        np.maximum(z, 0.0, out=z)
    else:
        np.tanh(z, out=z)


def _softmax_inplace(z: np.ndarray) -> None:
    z -= z.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)


def _check_x(spec: MLPSpec, x: np.ndarray, what: str = "x") -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != spec.sizes[0]:
        raise MLPError(f"{what} must have shape (n, {spec.sizes[0]}), got {x.shape}")
    return np.ascontiguousarray(x, dtype=np.float32)


def predict(spec: MLPSpec, weights: Weights, x: np.ndarray) -> np.ndarray:
    """Network output for rows of ``x``: values (linear) or class probabilities (softmax)."""
    check_weights(spec, weights)
    a = x_in = _check_x(spec, x)
    for i in range(spec.n_layers):
        w = np.asarray(weights[f"layers.{i}.weight"], dtype=np.float32)
        b = np.asarray(weights[f"layers.{i}.bias"], dtype=np.float32)
        a = a @ w
        a += b
        if i < spec.n_layers - 1:
            _activate(spec.activation, a)
    if spec.skip:
        a += x_in @ np.asarray(weights["skip.weight"], dtype=np.float32)
    if spec.output == "softmax":
        _softmax_inplace(a)
    return a


def _check_y(spec: MLPSpec, y: np.ndarray, n: int) -> np.ndarray:
    y = np.asarray(y)
    if spec.output == "softmax":
        if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
            raise MLPError(f"y must be int class ids of shape ({n},), got {y.dtype} {y.shape}")
        k = spec.sizes[-1]
        if n and (y.min() < 0 or y.max() >= k):
            raise MLPError(f"class ids must be in [0, {k}), got range [{y.min()}, {y.max()}]")
        return y.astype(np.intp)
    if y.ndim == 1 and spec.sizes[-1] == 1:
        y = y[:, None]
    if y.shape != (n, spec.sizes[-1]):
        raise MLPError(f"y must have shape ({n}, {spec.sizes[-1]}), got {y.shape}")
    y = np.ascontiguousarray(y, dtype=np.float32)
    if not np.all(np.isfinite(y)):
        raise MLPError("y holds non-finite values")
    return y


class _Net:
    """Flat parameter/gradient buffers plus per-batch activation buffers."""

    def __init__(
        self, spec: MLPSpec, weights: Weights, batch: int, huber_delta: float | None = None
    ) -> None:
        self.spec = spec
        self.huber_delta = huber_delta
        shapes = spec.shapes()
        total = sum(math.prod(s) for s in shapes.values())
        self.flat = np.empty(total, dtype=np.float32)
        self.grad = np.zeros(total, dtype=np.float32)
        self.decay_mask = np.zeros(total, dtype=np.float32)  # 1 where L2 applies (weights)
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        offset = 0
        for name, shape in shapes.items():
            size = math.prod(shape)
            view = self.flat[offset : offset + size].reshape(shape)
            view[...] = np.asarray(weights[name], dtype=np.float32)
            self.params[name] = view
            self.grads[name] = self.grad[offset : offset + size].reshape(shape)
            if name.endswith(".weight"):
                self.decay_mask[offset : offset + size] = 1.0
            offset += size
        self.W = [self.params[f"layers.{i}.weight"] for i in range(spec.n_layers)]
        self.B = [self.params[f"layers.{i}.bias"] for i in range(spec.n_layers)]
        self.gW = [self.grads[f"layers.{i}.weight"] for i in range(spec.n_layers)]
        self.gB = [self.grads[f"layers.{i}.bias"] for i in range(spec.n_layers)]
        self.S = self.params.get("skip.weight")
        self.gS = self.grads.get("skip.weight")
        # acts[0] is the input batch, acts[i+1] the output of layer i (post-activation).
        self.acts = [np.empty((batch, s), dtype=np.float32) for s in spec.sizes]
        self.delta = [np.empty((batch, s), dtype=np.float32) for s in spec.sizes]
        self.mask = [np.empty((batch, s), dtype=bool) for s in spec.sizes]
        self.scratch = [np.empty((batch, s), dtype=np.float32) for s in spec.sizes]

    def weights(self) -> Weights:
        return {name: view.copy() for name, view in self.params.items()}

    def forward(self, m: int) -> np.ndarray:
        spec = self.spec
        for i in range(spec.n_layers):
            a_in, a_out = self.acts[i][:m], self.acts[i + 1][:m]
            np.matmul(a_in, self.W[i], out=a_out)
            a_out += self.B[i]
            if i < spec.n_layers - 1:
                _activate(spec.activation, a_out)
        out = self.acts[-1][:m]
        if self.S is not None:
            tmp = self.scratch[-1][:m]
            np.matmul(self.acts[0][:m], self.S, out=tmp)
            out += tmp
        if spec.output == "softmax":
            _softmax_inplace(out)
        return out

    def loss_and_output_delta(self, m: int, y: np.ndarray) -> float:
        """Loss of the batch; writes dLoss/dz of the last layer into delta[-1]."""
        out = self.acts[-1][:m]
        d = self.delta[-1][:m]
        if self.spec.output == "softmax":
            rows = np.arange(m)
            picked = out[rows, y]
            loss = float(-np.log(np.maximum(picked, 1e-12)).mean())
            np.copyto(d, out)
            d[rows, y] -= 1.0
            d *= 1.0 / m
        elif self.huber_delta is None:
            np.subtract(out, y, out=d)
            loss = float(np.vdot(d, d)) / d.size
            d *= 2.0 / d.size
        else:
            np.subtract(out, y, out=d)
            loss = _huber_sum(d, self.huber_delta) / d.size
            np.clip(d, -self.huber_delta, self.huber_delta, out=d)
            d *= 2.0 / d.size
        return loss

    def backward(self, m: int) -> None:
        spec = self.spec
        if self.gS is not None:
            np.matmul(self.acts[0][:m].T, self.delta[-1][:m], out=self.gS)
        for i in range(spec.n_layers - 1, -1, -1):
            d = self.delta[i + 1][:m]
            np.matmul(self.acts[i][:m].T, d, out=self.gW[i])
            np.sum(d, axis=0, out=self.gB[i])
            if i == 0:
                break
            d_prev = self.delta[i][:m]
            np.matmul(d, self.W[i].T, out=d_prev)
            a = self.acts[i][:m]
            if spec.activation == "relu":
                mask = self.mask[i][:m]
                np.greater(a, 0.0, out=mask)
                np.multiply(d_prev, mask, out=d_prev)
            else:  # tanh' = 1 - a^2, with a = tanh(z) kept from the forward pass
                tmp = self.scratch[i][:m]
                np.multiply(a, a, out=tmp)
                np.subtract(1.0, tmp, out=tmp)
                np.multiply(d_prev, tmp, out=d_prev)


def _huber_sum(residual: np.ndarray, delta: float) -> float:
    """Sum of r^2 where |r| <= delta, 2 delta |r| - delta^2 beyond (the gradient is clipped r)."""
    a = np.abs(residual)
    inner = np.minimum(a, delta)
    return float(np.vdot(inner, inner)) + 2.0 * delta * float((a - inner).sum())


def _evaluate(net: _Net, x: np.ndarray, y: np.ndarray, batch: int) -> dict[str, float]:
    """Mean loss (and accuracy for softmax) over a whole array, in buffer-sized chunks."""
    n = x.shape[0]
    total = 0.0
    correct = 0
    for start in range(0, n, batch):
        m = min(batch, n - start)
        net.acts[0][:m] = x[start : start + m]
        out = net.forward(m)
        yb = y[start : start + m]
        total += net.loss_and_output_delta(m, yb) * m
        if net.spec.output == "softmax":
            correct += int(np.count_nonzero(out.argmax(axis=1) == yb))
    result = {"loss": total / n}
    if net.spec.output == "softmax":
        result["accuracy"] = correct / n
    return result


def train(
    spec: MLPSpec, weights: Weights, x: np.ndarray, y: np.ndarray, config: TrainConfig
) -> TrainResult:
    """Train from ``weights`` (never mutated) with Adam on mini-batches; deterministic per seed.

    With ``validation_fraction > 0`` a seeded random split is held out; each history entry
    then carries ``val_loss`` (and ``val_accuracy`` for softmax). With ``patience`` set,
    training stops after that many epochs without a better validation loss (training loss
    when there is no validation split) and returns the best weights seen.
    """
    check_weights(spec, weights)
    x = _check_x(spec, x)
    if not np.all(np.isfinite(x)):
        raise MLPError("x holds non-finite values")
    n = x.shape[0]
    if n == 0:
        raise MLPError("x has no rows")
    y = _check_y(spec, y, n)
    rng = np.random.default_rng(config.seed)

    n_val = round(n * config.validation_fraction)
    if n_val >= n:
        n_val = n - 1
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    if n_val > 0:
        order = rng.permutation(n)
        x_val, y_val = x[order[:n_val]], y[order[:n_val]]
        x_tr, y_tr = x[order[n_val:]], y[order[n_val:]]
    else:
        x_tr, y_tr = x, y
    n_tr = x_tr.shape[0]
    batch = min(config.batch_size, n_tr)
    net = _Net(spec, weights, max(batch, 1), config.huber_delta)

    # Adam state over the flat parameter vector.
    b1, b2, eps, lr = 0.9, 0.999, 1e-8, config.learning_rate
    m1 = np.zeros_like(net.flat)
    m2 = np.zeros_like(net.flat)
    tmp = np.empty_like(net.flat)
    step = 0
    decay = net.decay_mask * np.float32(config.l2) if config.l2 > 0 else None

    history: list[dict[str, float]] = []
    best_loss = math.inf
    best_flat = net.flat.copy()
    since_best = 0
    epochs_run = 0
    if config.keep_start and config.patience is not None:
        xs, ys = (x_val, y_val) if x_val is not None and y_val is not None else (x_tr, y_tr)
        with np.errstate(over="ignore", invalid="ignore"):
            start_loss = _evaluate(net, xs, ys, batch)["loss"]
        if math.isfinite(start_loss):
            best_loss = start_loss
    yb_buf = np.empty((batch, *y_tr.shape[1:]), dtype=y_tr.dtype)
    for epoch in range(config.epochs):
        perm = rng.permutation(n_tr)
        total = 0.0
        for start in range(0, n_tr, batch):
            idx = perm[start : start + batch]
            m = idx.shape[0]
            np.take(x_tr, idx, axis=0, out=net.acts[0][:m])
            np.take(y_tr, idx, axis=0, out=yb_buf[:m])
            with np.errstate(over="ignore", invalid="ignore"):  # checked just below
                net.forward(m)
                batch_loss = net.loss_and_output_delta(m, yb_buf[:m])
            if not math.isfinite(batch_loss):
                raise TrainingDiverged(
                    f"training diverged at epoch {epoch + 1}: batch loss {batch_loss!r}"
                )
            total += batch_loss * m
            net.backward(m)
            g = net.grad
            if decay is not None:
                np.multiply(net.flat, decay, out=tmp)
                g += tmp
            step += 1
            m1 *= b1
            np.multiply(g, 1.0 - b1, out=tmp)
            m1 += tmp
            m2 *= b2
            np.multiply(g, g, out=tmp)
            tmp *= 1.0 - b2
            m2 += tmp
            step_size = lr * math.sqrt(1.0 - b2**step) / (1.0 - b1**step)
            # eps scaled like torch: m_hat / (sqrt(v_hat) + eps)
            np.sqrt(m2, out=tmp)
            tmp += eps * math.sqrt(1.0 - b2**step)
            np.divide(m1, tmp, out=tmp)
            tmp *= step_size
            net.flat -= tmp
        epochs_run = epoch + 1
        entry: dict[str, float] = {"epoch": float(epochs_run), "loss": total / n_tr}
        monitored = entry["loss"]
        if x_val is not None and y_val is not None:
            val = _evaluate(net, x_val, y_val, batch)
            entry["val_loss"] = val["loss"]
            if "accuracy" in val:
                entry["val_accuracy"] = val["accuracy"]
            monitored = val["loss"]
        if not math.isfinite(entry["loss"]):
            raise TrainingDiverged(
                f"training diverged at epoch {epochs_run}: loss {entry['loss']!r}"
            )
        history.append(entry)
        if config.patience is not None:
            if monitored < best_loss:
                best_loss = monitored
                best_flat[...] = net.flat
                since_best = 0
            else:
                since_best += 1
                if since_best >= config.patience:
                    break
    if config.patience is not None and history:
        net.flat[...] = best_flat
    return TrainResult(weights=net.weights(), history=history, epochs_run=epochs_run)


def loss(
    spec: MLPSpec,
    weights: Weights,
    x: np.ndarray,
    y: np.ndarray,
    l2: float = 0.0,
    huber_delta: float | None = None,
) -> float:
    """Objective that ``train`` minimises (float64 math, for gradient checks and reports)."""
    check_weights(spec, weights)
    a = x64 = np.asarray(x, dtype=np.float64)
    for i in range(spec.n_layers):
        a = a @ np.asarray(weights[f"layers.{i}.weight"], np.float64) + np.asarray(
            weights[f"layers.{i}.bias"], np.float64
        )
        if i < spec.n_layers - 1:
            a = np.maximum(a, 0.0) if spec.activation == "relu" else np.tanh(a)
    if spec.skip:
        a = a + x64 @ np.asarray(weights["skip.weight"], np.float64)
    if spec.output == "softmax":
        a = a - a.max(axis=1, keepdims=True)
        logp = a - np.log(np.exp(a).sum(axis=1, keepdims=True))
        value = float(-logp[np.arange(a.shape[0]), np.asarray(y)].mean())
    else:
        r = a - np.asarray(y, np.float64).reshape(a.shape)
        value = (float((r**2).mean()) if huber_delta is None
                 else _huber_sum(r, huber_delta) / r.size)
    if l2:
        value += (
            0.5
            * l2
            * sum(
                float((np.asarray(weights[f"layers.{i}.weight"], np.float64) ** 2).sum())
                for i in range(spec.n_layers)
            )
        )
        if spec.skip:
            value += 0.5 * l2 * float((np.asarray(weights["skip.weight"], np.float64) ** 2).sum())
    return value


# the parameters of ``loss``: this is the gradient of exactly that objective
def gradients(
    spec: MLPSpec,
    weights: Weights,
    x: np.ndarray,
    y: np.ndarray,
    l2: float = 0.0,
    huber_delta: float | None = None,
) -> Weights:
    """Analytic gradient of ``loss`` over the whole of ``x`` (the one ``train`` steps along)."""
    check_weights(spec, weights)
    x = _check_x(spec, x)
    n = x.shape[0]
    y = _check_y(spec, y, n)
    net = _Net(spec, weights, n, huber_delta)
    net.acts[0][:n] = x
    net.forward(n)
    net.loss_and_output_delta(n, y)
    net.backward(n)
    grads = {name: g.copy() for name, g in net.grads.items()}
    if l2:
        for i in range(spec.n_layers):
            grads[f"layers.{i}.weight"] += l2 * net.W[i]
        if net.S is not None:
            grads["skip.weight"] += l2 * net.S
    return grads
