"""The exchange interface the peer layer and the benchmarks rely on keeps its signatures."""

from __future__ import annotations

import gateway.learning as learning


def test_exchange_interface_signatures() -> None:
    import inspect

    assert list(inspect.signature(learning.train).parameters) == [
        "spec",
        "weights",
        "x",
        "y",
        "config",
    ]
    assert list(inspect.signature(learning.init_weights).parameters) == ["spec", "seed"]
    assert list(inspect.signature(learning.predict).parameters) == ["spec", "weights", "x"]
    cfg = learning.TrainConfig()
    assert (
        cfg.epochs,
        cfg.batch_size,
        cfg.learning_rate,
        cfg.l2,
        cfg.seed,
        cfg.patience,
        cfg.validation_fraction,
    ) == (10, 32, 1e-3, 0.0, 0, None, 0.0)
    spec = learning.MLPSpec((3, 2))
    assert (spec.activation, spec.output) == ("relu", "linear")
