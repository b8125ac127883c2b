"""The [training] section: defaults, overrides and named errors."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError, TrainingSection, config_from_dict
from gateway.learning.forecast import network_spec, train_config


def test_training_settings_flow_into_the_trainer() -> None:
    cfg = config_from_dict(
        {"training": {"window": 12, "activation": "tanh", "hidden_layers": 2, "patience": 0}},
        env={},
    )
    assert cfg.training.window == 12
    spec = network_spec(12 * 3, 3, cfg.training, "linear")
    assert spec.sizes == (36, 32, 32, 3) and spec.activation == "tanh"
    tc = train_config(cfg.training)
    assert tc.patience is None and tc.epochs == TrainingSection().epochs


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"activation": "gelu"}, "training.activation = 'gelu'"),
        ({"window": -1}, "training.window = -1"),
        ({"windw": 3}, "unknown key training.windw"),
    ],
)
def test_bad_training_settings_are_named(table, message) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"training": table}, env={})
