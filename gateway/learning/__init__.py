"""Learning on the gateway: datasets from stored series, a numpy MLP, the forecaster, its
promotion guard, the model registry, background training and the anomaly detector.

The face below is the exchange interface (the trainer and the weights format the peer
layer moves) and the forecaster with its registry; everything else is imported from its
module. Modules: ``mlp`` (the trainer), ``dataset`` (series -> windows), ``computation``
(what the forecaster computes around its network), ``forecast`` (the default task and its
anomaly score), ``baselines`` (persistence, seasonal naive, ridge), ``promotion`` (the
guard before deployment), ``pipeline`` (train, judge, calibrate, register: the one path
both the scheduler and the LEARNAE rounds take), ``federated`` (one network over many
devices, then personalised), ``scheduler`` (background training), ``registry`` (model
versions), ``version_retention`` (how many are kept), ``export`` / ``tflite_export`` /
``edge_export`` (TFLite and the boards' model, loaded only when used: they need
flatbuffers), ``anomaly`` (the streaming detector over any ``Predictor``), ``calibration``
(its statistics and threshold), ``events`` (flags into anomaly events), ``monitor`` (the
service's live detector), ``regular`` (irregular readings onto the grid), ``replay`` and
``csvseries`` (``experiment replay``), ``metrics``, ``serialize``.
"""

from gateway.learning.forecast import ForecastModel, train_forecast
from gateway.learning.mlp import (
    MLPSpec,
    TrainConfig,
    TrainResult,
    Weights,
    check_weights,
    init_weights,
    predict,
    train,
)
from gateway.learning.registry import ModelRegistry, ModelVersion

__all__ = [
    "ForecastModel",
    "MLPSpec",
    "ModelRegistry",
    "ModelVersion",
    "TrainConfig",
    "TrainResult",
    "Weights",
    "check_weights",
    "init_weights",
    "predict",
    "train",
    "train_forecast",
]
