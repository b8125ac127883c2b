"""Learning on the gateway: datasets from stored series, a numpy MLP, export, registry.

The public surface is re-exported here; modules: ``mlp`` (the trainer and the weights
exchange format), ``dataset`` (series -> windows), ``forecast`` (the default task and its
anomaly score), ``metrics``, ``tflite_export``, ``edge_export`` (the boards' model),
``registry`` (model versions in SQLite), ``scheduler`` (background training),
``computation`` (what the forecaster computes around its network), ``baselines``
(persistence, seasonal naive, ridge), ``promotion`` (the guard before deployment),
``anomaly`` (the streaming detector over any ``Predictor``), ``calibration`` (its
statistics and threshold), ``events`` (flags into anomaly
events), ``regular`` (irregular readings onto the grid), ``replay`` and ``csvseries``
(``experiment replay``).
"""

from gateway.learning.computation import Computation, calendar_features
from gateway.learning.dataset import (
    ClassifyDataset,
    ForecastDataset,
    SkipReason,
    SkipTraining,
    Standardizer,
    build_classify_dataset,
    build_forecast_dataset,
    resample,
)
from gateway.learning.edge_export import EdgeExportError, edge_model_args, edge_model_bytes
from gateway.learning.forecast import (
    ClassifierModel,
    ForecastModel,
    train_classifier,
    train_forecast,
)
from gateway.learning.metrics import classify_report, forecast_report, macro_f1, precision_recall
from gateway.learning.mlp import (
    MLPError,
    MLPSpec,
    TrainConfig,
    TrainingDiverged,
    TrainResult,
    Weights,
    check_weights,
    init_weights,
    predict,
    train,
)
from gateway.learning.promotion import Decision, judge
from gateway.learning.registry import ModelRegistry, ModelVersion, RegistryError
from gateway.learning.scheduler import TrainingOutcome, TrainingScheduler
from gateway.learning.serialize import weights_from_bytes, weights_to_bytes
from gateway.learning.tflite_export import ExportError, export_tflite, run_tflite

__all__ = [
    "ClassifierModel",
    "ClassifyDataset",
    "Computation",
    "Decision",
    "EdgeExportError",
    "ExportError",
    "ForecastDataset",
    "ForecastModel",
    "MLPError",
    "MLPSpec",
    "ModelRegistry",
    "ModelVersion",
    "RegistryError",
    "SkipReason",
    "SkipTraining",
    "Standardizer",
    "TrainConfig",
    "TrainResult",
    "TrainingDiverged",
    "TrainingOutcome",
    "TrainingScheduler",
    "Weights",
    "build_classify_dataset",
    "build_forecast_dataset",
    "calendar_features",
    "check_weights",
    "classify_report",
    "edge_model_args",
    "edge_model_bytes",
    "export_tflite",
    "forecast_report",
    "init_weights",
    "judge",
    "macro_f1",
    "precision_recall",
    "predict",
    "resample",
    "run_tflite",
    "train",
    "train_classifier",
    "train_forecast",
    "weights_from_bytes",
    "weights_to_bytes",
]
