"""The numpy MLP: exact gradients, determinism, continuation, early stopping, validation."""

from __future__ import annotations

import numpy as np
import pytest

from gateway.learning import mlp
from gateway.learning.mlp import MLPError, MLPSpec, TrainConfig, init_weights, predict, train
from gateway.learning.serialize import weights_from_bytes, weights_to_bytes


def _data(spec: MLPSpec, n: int = 64, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, spec.sizes[0])).astype(np.float32)
    if spec.output == "softmax":
        return x, rng.integers(0, spec.sizes[-1], n)
    return x, rng.normal(size=(n, spec.sizes[-1])).astype(np.float32)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("output", ["linear", "softmax"])
def test_gradients_match_central_differences(activation: str, output: str) -> None:
    spec = MLPSpec((5, 7, 6, 3), activation, output)
    x, y = _data(spec, n=20)
    _check_against_central_differences(spec, init_weights(spec, seed=3), x, y, l2=0.05)


def _check_against_central_differences(spec: MLPSpec, weights, x, y, *, l2: float,
                                       huber_delta: float | None = None) -> None:
    analytic = mlp.gradients(spec, weights, x, y, l2=l2, huber_delta=huber_delta)
    w64 = {k: v.astype(np.float64) for k, v in weights.items()}
    eps = 1e-5
    rng = np.random.default_rng(0)
    for name, value in w64.items():
        for _ in range(4):
            idx = tuple(int(rng.integers(0, s)) for s in value.shape)
            plus = {k: v.copy() for k, v in w64.items()}
            minus = {k: v.copy() for k, v in w64.items()}
            plus[name][idx] += eps
            minus[name][idx] -= eps
            numeric = (mlp.loss(spec, plus, x, y, l2, huber_delta)
                       - mlp.loss(spec, minus, x, y, l2, huber_delta)) / (2 * eps)
            assert abs(numeric - float(analytic[name][idx])) < 1e-4 * max(1.0, abs(numeric)), (
                name,
                idx,
                numeric,
                analytic[name][idx],
            )


@pytest.mark.parametrize("skip", [False, True])
def test_huber_gradients_match_central_differences(skip: bool) -> None:
    spec = MLPSpec((5, 7, 3), "relu", "linear", skip=skip)
    x, y = _data(spec, n=30)
    # residuals of an untrained net on N(0, 1) targets fall on both sides of the delta
    _check_against_central_differences(spec, init_weights(spec, seed=4), x, y, l2=0.01,
                                       huber_delta=0.3)


def test_huber_is_the_squared_error_below_delta_and_linear_beyond() -> None:
    spec = MLPSpec((2, 3, 1), "relu", "linear")
    weights = {k: np.zeros_like(v) for k, v in init_weights(spec, 0).items()}  # outputs 0
    x = np.zeros((2, 2), np.float32)
    y = np.array([[0.5], [3.0]], np.float32)  # residuals -0.5 and -3 against delta 1
    assert mlp.loss(spec, weights, x, y) == pytest.approx((0.25 + 9.0) / 2)
    assert mlp.loss(spec, weights, x, y, huber_delta=1.0) == pytest.approx((0.25 + 5.0) / 2)
    # an outlier pulls a Huber fit less: the fitted bias moves less towards the outlying target
    y_out = np.concatenate([np.zeros((63, 1)), np.full((1, 1), 50.0)]).astype(np.float32)
    x_out = np.zeros((64, 2), np.float32)
    cfg = TrainConfig(epochs=200, batch_size=64, learning_rate=0.05)
    mse_bias = train(spec, weights, x_out, y_out, cfg).weights["layers.1.bias"][0]
    huber = TrainConfig(epochs=200, batch_size=64, learning_rate=0.05, huber_delta=0.1)
    huber_bias = train(spec, weights, x_out, y_out, huber).weights["layers.1.bias"][0]
    assert abs(huber_bias) < 0.2 * abs(mse_bias)


def test_training_is_deterministic_per_seed() -> None:
    spec = MLPSpec((8, 16, 4), "tanh", "softmax")
    x, y = _data(spec, n=200)
    cfg = TrainConfig(epochs=5, batch_size=16, seed=7, validation_fraction=0.2, l2=1e-3)
    a = train(spec, init_weights(spec, 1), x, y, cfg)
    b = train(spec, init_weights(spec, 1), x, y, cfg)
    c = train(
        spec,
        init_weights(spec, 1),
        x,
        y,
        TrainConfig(epochs=5, batch_size=16, seed=8, validation_fraction=0.2, l2=1e-3),
    )
    for name in a.weights:
        assert np.array_equal(a.weights[name], b.weights[name])
        assert a.weights[name].dtype == np.float32
    assert a.history == b.history
    assert any(not np.array_equal(a.weights[k], c.weights[k]) for k in a.weights)
    assert [h["epoch"] for h in a.history] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert all("val_loss" in h and "val_accuracy" in h for h in a.history)


def test_training_learns_and_never_mutates_given_weights() -> None:
    spec = MLPSpec((4, 32, 1), "relu", "linear")
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (512, 4)).astype(np.float32)
    y = (np.sin(2 * x[:, :1]) + x[:, 1:2] * x[:, 2:3]).astype(np.float32)
    start = init_weights(spec, 0)
    frozen = {k: v.copy() for k, v in start.items()}
    result = train(spec, start, x, y, TrainConfig(epochs=60, learning_rate=5e-3))
    for name in start:
        assert np.array_equal(start[name], frozen[name])
    assert result.epochs_run == 60
    assert result.history[-1]["loss"] < 0.1 * result.history[0]["loss"]


def test_continue_from_weights() -> None:
    spec = MLPSpec((4, 16, 3), "relu", "softmax")
    x, y = _data(spec, n=300)
    first = train(spec, init_weights(spec, 0), x, y, TrainConfig(epochs=10, seed=0))
    # zero epochs returns exactly the starting point
    same = train(spec, first.weights, x, y, TrainConfig(epochs=0))
    assert same.epochs_run == 0 and same.history == []
    for name in first.weights:
        assert np.array_equal(same.weights[name], first.weights[name])
    more = train(spec, first.weights, x, y, TrainConfig(epochs=10, seed=1))
    fresh = train(spec, init_weights(spec, 0), x, y, TrainConfig(epochs=10, seed=1))
    assert more.history[0]["loss"] < fresh.history[0]["loss"]
    assert mlp.loss(spec, more.weights, x, y) < mlp.loss(spec, first.weights, x, y)


def test_early_stopping_restores_best_validation_weights() -> None:
    spec = MLPSpec((10, 64, 2), "relu", "softmax")
    x, y = _data(spec, n=120)  # random labels: validation loss soon rises
    cfg = TrainConfig(epochs=200, learning_rate=1e-2, patience=3, validation_fraction=0.3, seed=2)
    result = train(spec, init_weights(spec, 0), x, y, cfg)
    assert result.epochs_run < 200
    losses = [h["val_loss"] for h in result.history]
    best = int(np.argmin(losses))
    assert result.epochs_run == best + 1 + 3
    order = np.random.default_rng(2).permutation(120)[:36]  # the split train() made
    val = mlp.loss(spec, result.weights, x[order], y[order])
    assert val == pytest.approx(losses[best], rel=1e-4)


def test_predict_softmax_rows_are_probabilities() -> None:
    spec = MLPSpec((3, 5, 4), "relu", "softmax")
    probs = predict(spec, init_weights(spec, 0), np.ones((6, 3)))
    assert probs.shape == (6, 4)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)


def test_safetensors_round_trip() -> None:
    spec = MLPSpec((3, 5, 2))
    weights = init_weights(spec, 4)
    back = weights_from_bytes(weights_to_bytes(weights))
    assert set(back) == {"layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"}
    for name in weights:
        assert np.array_equal(back[name], weights[name])
        assert back[name].dtype == np.float32


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: MLPSpec((3,)), "sizes"),
        (lambda: MLPSpec((3, 2), activation="gelu"), "'gelu'"),
        (lambda: MLPSpec((3, 2), output="sigmoid"), "'sigmoid'"),
        (lambda: TrainConfig(batch_size=0), "batch_size"),
        (lambda: TrainConfig(validation_fraction=1.0), "validation_fraction"),
        (lambda: TrainConfig(huber_delta=0.0), "huber_delta"),
    ],
)
def test_bad_settings_name_the_value(build, message: str) -> None:
    with pytest.raises(MLPError, match=message):
        build()


def test_bad_inputs_are_rejected_with_names() -> None:
    spec = MLPSpec((3, 4, 2), output="softmax")
    weights = init_weights(spec, 0)
    x = np.zeros((5, 3), np.float32)
    with pytest.raises(MLPError, match=r"class ids must be in \[0, 2\)"):
        train(spec, weights, x, np.array([0, 1, 2, 0, 1]), TrainConfig())
    with pytest.raises(MLPError, match="non-finite"):
        train(spec, weights, np.full((5, 3), np.nan), np.zeros(5, int), TrainConfig())
    with pytest.raises(MLPError, match=r"layers.1.bias.*shape"):
        predict(spec, {**weights, "layers.1.bias": np.zeros(3, np.float32)}, x)
    with pytest.raises(MLPError, match="missing"):
        predict(spec, {"layers.0.weight": weights["layers.0.weight"]}, x)


def test_matches_pytorch_step_for_step() -> None:
    torch = pytest.importorskip("torch")
    from gateway.bench.train import _torch_train

    spec = MLPSpec((12, 16, 3), "tanh", "softmax")
    x, y = _data(spec, n=100)
    start = init_weights(spec, 5)
    cfg = TrainConfig(epochs=3, batch_size=10, learning_rate=1e-2, seed=3)
    ours = train(spec, start, x, y, cfg).weights
    theirs, _ = _torch_train(torch, spec, start, x, y, cfg)
    for name in ours:
        np.testing.assert_allclose(ours[name], theirs[name], atol=2e-5)


def test_the_forecaster_matches_pytorch_step_for_step() -> None:
    """A linear path beside the hidden layer and the Huber loss, as the forecaster trains."""
    torch = pytest.importorskip("torch")
    from gateway.bench.train import _torch_train

    spec = MLPSpec((12, 16, 3), "relu", "linear", skip=True)
    x, y = _data(spec, n=100)
    start = init_weights(spec, 5)
    cfg = TrainConfig(epochs=3, batch_size=10, learning_rate=1e-2, seed=3, huber_delta=0.2)
    ours = train(spec, start, x, y, cfg).weights
    theirs, _ = _torch_train(torch, spec, start, x, y, cfg)
    assert set(ours) == set(theirs)
    for name in ours:
        np.testing.assert_allclose(ours[name], theirs[name], atol=2e-5)
