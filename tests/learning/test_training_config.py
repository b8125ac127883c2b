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
    assert tc.huber_delta == TrainingSection().huber_delta  # Huber by default


def test_the_loss_setting_picks_the_trainer_loss() -> None:
    mse = config_from_dict({"training": {"loss": "mse"}}, env={})
    assert train_config(mse.training).huber_delta is None
    wide = config_from_dict({"training": {"huber_delta": 0.5}}, env={})
    assert train_config(wide.training).huber_delta == 0.5


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"activation": "gelu"}, "training.activation = 'gelu'"),
        ({"window": -1}, "training.window = -1"),
        ({"windw": 3}, "unknown key training.windw"),
        ({"loss": "mae"}, "training.loss = 'mae'"),
        ({"huber_delta": 0}, "training.huber_delta = 0"),
        ({"huber_delta": float("nan")}, "training.huber_delta = nan"),
    ],
)
def test_bad_training_settings_are_named(table, message) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"training": table}, env={})
