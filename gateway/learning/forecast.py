"""The default task: forecast the next reading; the anomaly score is the standardized residual.

A ``ForecastModel`` carries everything needed to score new readings anywhere (gateway,
board, another peer): the network, the window, the channel order, the standardization
statistics, the per-channel residual scale and the alarm threshold.
score = max over channels |x_std - prediction| / residual_scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gateway.config import TrainingSection
from gateway.learning.dataset import (
    ClassifyDataset,
    ForecastDataset,
    SkipReason,
    SkipTraining,
    Standardizer,
    build_forecast_dataset,
    chronological_split,
)
from gateway.learning.metrics import classify_report, forecast_report
from gateway.learning.mlp import (
    MLPSpec,
    TrainConfig,
    TrainingDiverged,
    Weights,
    check_weights,
    init_weights,
    predict,
    train,
)

MIN_RESIDUAL_SCALE = 1e-3  # standardized units; keeps scores finite on a perfect fit


def train_config(settings: TrainingSection) -> TrainConfig:
    return TrainConfig(
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        l2=settings.l2,
        seed=settings.seed,
        patience=settings.patience or None,
        validation_fraction=settings.validation_fraction,
    )


def network_spec(inputs: int, outputs: int, settings: TrainingSection, output: str) -> MLPSpec:
    hidden = (settings.hidden_units,) * settings.hidden_layers
    return MLPSpec((inputs, *hidden, outputs), activation=settings.activation, output=output)


@dataclass
class ForecastModel:
    spec: MLPSpec
    weights: Weights
    channels: list[str]
    window: int
    period_s: float
    scaler: Standardizer
    residual_scale: np.ndarray  # float32 [C], standardized units
    threshold: float
    metrics: dict[str, float] = field(default_factory=dict)
    data_start: float = 0.0
    data_end: float = 0.0
    readings: int = 0
    samples: int = 0  # training windows

    def predict_std(self, x: np.ndarray) -> np.ndarray:
        return predict(self.spec, self.weights, x)

    def window_scores(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Anomaly score of each target reading ``y`` given its window ``x`` (standardized)."""
        residual = np.abs(y - self.predict_std(x)) / self.residual_scale
        return residual.max(axis=1)

    def score_series(self, ts: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(time, score) of every reading that completes a gap-free window; may be empty."""
        try:
            ds = forecast_dataset_of(self, ts, values)
        except SkipTraining:
            return np.zeros(0), np.zeros(0, np.float32)
        return ds.t, self.window_scores(ds.x, ds.y)

    def metadata(self) -> dict[str, Any]:
        """JSON-able description (everything but the weights) for the registry."""
        return {
            "task": "forecast",
            "spec": self.spec.to_dict(),
            "channels": self.channels,
            "window": self.window,
            "period_s": self.period_s,
            "scaler": self.scaler.to_dict(),
            "residual_scale": self.residual_scale.tolist(),
            "threshold": self.threshold,
            "metrics": self.metrics,
            "data_start": self.data_start,
            "data_end": self.data_end,
            "readings": self.readings,
            "samples": self.samples,
        }

    @classmethod
    def from_version(cls, version: Any) -> ForecastModel:
        """From a registry ``ModelVersion`` (anything with ``metadata`` and ``weights``)."""
        return cls.from_metadata(version.metadata, version.weights)

    @classmethod
    def from_metadata(cls, meta: dict[str, Any], weights: Weights) -> ForecastModel:
        return cls(
            spec=MLPSpec.from_dict(meta["spec"]),
            weights=weights,
            channels=list(meta["channels"]),
            window=int(meta["window"]),
            period_s=float(meta["period_s"]),
            scaler=Standardizer.from_dict(meta["scaler"]),
            residual_scale=np.asarray(meta["residual_scale"], np.float32),
            threshold=float(meta["threshold"]),
            metrics=dict(meta.get("metrics", {})),
            data_start=float(meta.get("data_start", 0.0)),
            data_end=float(meta.get("data_end", 0.0)),
            readings=int(meta.get("readings", 0)),
            samples=int(meta.get("samples", 0)),
        )


def _fit(spec: MLPSpec, start: Weights, x: np.ndarray, y: np.ndarray, cfg: TrainConfig) -> Weights:
    try:
        result = train(spec, start, x, y, cfg)
    except TrainingDiverged as exc:
        raise SkipTraining(SkipReason.DIVERGED, str(exc)) from exc
    if not all(np.all(np.isfinite(w)) for w in result.weights.values()):
        raise SkipTraining(SkipReason.DIVERGED, "training produced non-finite weights")
    return result.weights


def train_forecast(
    ts: np.ndarray,
    values: np.ndarray,
    channels: list[str],
    settings: TrainingSection | None = None,
    *,
    previous: ForecastModel | None = None,
    start_weights: Weights | None = None,
) -> ForecastModel:
    """Train (or continue) a forecaster on one device's series; raises ``SkipTraining``.

    ``previous`` continues its weights and keeps its standardization when the channels
    and window match; ``start_weights`` (e.g. fused peer weights) overrides the start point
    and must match the network the settings describe (else ``MLPError`` names the mismatch).
    """
    settings = settings or TrainingSection()
    scaler = None
    if (
        previous is not None
        and previous.channels == list(channels)
        and (previous.window == settings.window)
    ):
        scaler = previous.scaler
    else:
        previous = None
    ds = build_forecast_dataset(
        ts,
        values,
        channels,
        window=settings.window,
        period_s=settings.period_s,
        min_windows=settings.min_windows,
        scaler=scaler,
    )
    c = len(channels)
    spec = network_spec(settings.window * c, c, settings, "linear")
    if start_weights is not None:
        check_weights(spec, start_weights)  # MLPError: the caller's weights, not the data
        start = start_weights
    elif previous is not None and previous.spec == spec:
        start = previous.weights
    else:
        start = init_weights(spec, settings.seed)
    tr, te = chronological_split(ds.x.shape[0], settings.test_fraction)
    weights = _fit(spec, start, ds.x[tr], ds.y[tr], train_config(settings))

    pred = predict(spec, weights, ds.x)
    held = te if te.stop - te.start >= 4 else slice(0, ds.x.shape[0])
    residual = ds.y[held] - pred[held]
    residual_scale = np.sqrt(np.mean(residual.astype(np.float64) ** 2, axis=0))
    residual_scale = np.maximum(residual_scale, MIN_RESIDUAL_SCALE).astype(np.float32)
    scores = (np.abs(ds.y[held] - pred[held]) / residual_scale).max(axis=1)
    quantile = float(np.quantile(scores, settings.anomaly_quantile))
    threshold = max(settings.anomaly_min_threshold, quantile)

    metrics = (
        {f"test_{k}": v for k, v in forecast_report(pred[te], ds.y[te], ds.last_inputs[te]).items()}
        if te.stop > te.start
        else {}
    )
    metrics.update(
        {
            f"train_{k}": v
            for k, v in forecast_report(pred[tr], ds.y[tr], ds.last_inputs[tr]).items()
        }
    )
    if not all(math.isfinite(v) for v in metrics.values()):
        raise SkipTraining(SkipReason.DIVERGED, f"non-finite metrics {metrics}")
    return ForecastModel(
        spec=spec,
        weights=weights,
        channels=list(channels),
        window=settings.window,
        period_s=settings.period_s,
        scaler=ds.scaler,
        residual_scale=residual_scale,
        threshold=threshold,
        metrics=metrics,
        data_start=ds.data_start,
        data_end=ds.data_end,
        readings=ds.readings,
        samples=tr.stop - tr.start,
    )


@dataclass
class ClassifierModel:
    spec: MLPSpec
    weights: Weights
    classes: list[int]
    channels: list[str]
    window: int
    period_s: float
    scaler: Standardizer
    metrics: dict[str, float] = field(default_factory=dict)
    samples: int = 0

    def metadata(self) -> dict[str, Any]:
        return {
            "task": "classify",
            "spec": self.spec.to_dict(),
            "classes": self.classes,
            "channels": self.channels,
            "window": self.window,
            "period_s": self.period_s,
            "scaler": self.scaler.to_dict(),
            "metrics": self.metrics,
            "samples": self.samples,
        }


def train_classifier(
    ds: ClassifyDataset, settings: TrainingSection | None = None
) -> ClassifierModel:
    """Train the ``classify`` task on a labelled dataset (``build_classify_dataset``)."""
    settings = settings or TrainingSection()
    spec = network_spec(ds.x.shape[1], len(ds.classes), settings, "softmax")
    tr, te = chronological_split(ds.x.shape[0], settings.test_fraction)
    weights = _fit(
        spec, init_weights(spec, settings.seed), ds.x[tr], ds.y[tr], train_config(settings)
    )
    metrics = {
        f"train_{k}": v
        for k, v in classify_report(predict(spec, weights, ds.x[tr]), ds.y[tr]).items()
    }
    if te.stop > te.start:
        metrics.update(
            {
                f"test_{k}": v
                for k, v in classify_report(predict(spec, weights, ds.x[te]), ds.y[te]).items()
            }
        )
    return ClassifierModel(
        spec,
        weights,
        ds.classes,
        ds.channels,
        ds.window,
        ds.period_s,
        ds.scaler,
        metrics,
        samples=tr.stop - tr.start,
    )


def forecast_dataset_of(
    model: ForecastModel, ts: np.ndarray, values: np.ndarray
) -> ForecastDataset:
    """Windows of new data under an existing model's statistics (for evaluation)."""
    return build_forecast_dataset(
        ts,
        values,
        model.channels,
        window=model.window,
        period_s=model.period_s,
        min_windows=0,
        scaler=model.scaler,
    )
