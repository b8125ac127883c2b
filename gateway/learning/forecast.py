"""The default task: forecast the next readings; the anomaly score is the standardized residual.

A ``ForecastModel`` carries everything needed to score new readings anywhere (gateway,
board, another peer): the network and what is computed around it (``computation``), the
window, the channel order, the standardization statistics, the per-channel residual
scale, the alarm threshold, and its figures against the baselines on held-out windows.
score = max over channels |x_std - step-1 prediction| / residual_scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gateway.config import TrainingSection
from gateway.errors import SkipTraining, TrainingDiverged
from gateway.learning.baselines import Ridge, baseline_table, choose_ridge
from gateway.learning.computation import Computation, calendar_features, timestamps_are_real
from gateway.learning.dataset import (
    ClassifyDataset,
    ForecastDataset,
    SkipReason,
    Standardizer,
    build_forecast_dataset,
    chronological_split,
)
from gateway.learning.metrics import classify_report
from gateway.learning.mlp import (
    MLPSpec,
    TrainConfig,
    Weights,
    check_weights,
    init_weights,
    predict,
    train,
)

MIN_RESIDUAL_SCALE = 1e-3  # standardized units; keeps scores finite on a perfect fit


def train_config(settings: TrainingSection) -> TrainConfig:
    # the settings handed over field by field (the API's responses are built the same way)
    return TrainConfig(
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        l2=settings.l2,
        seed=settings.seed,
        patience=settings.patience or None,
        validation_fraction=settings.validation_fraction,
        keep_start=True,
        huber_delta=settings.huber_delta if settings.loss == "huber" else None,
    )


def network_spec(
    inputs: int, outputs: int, settings: TrainingSection, output: str, *, skip: bool = False
) -> MLPSpec:
    hidden = (settings.hidden_units,) * settings.hidden_layers
    return MLPSpec(
        (inputs, *hidden, outputs), activation=settings.activation, output=output, skip=skip
    )


def computation_for(
    settings: TrainingSection, channels: int, ts: np.ndarray | None = None
) -> Computation:
    """The forecaster the settings describe; ``calendar = "auto"`` looks at ``ts``."""
    calendar = settings.calendar == "on" or (
        settings.calendar == "auto" and ts is not None and timestamps_are_real(ts)
    )
    return Computation(
        window=settings.window,
        channels=channels,
        horizon=settings.horizon,
        normalize=settings.normalize,
        calendar=calendar,
        change=settings.predict_change,
    )


def forecaster_spec(settings: TrainingSection, comp: Computation) -> MLPSpec:
    return network_spec(
        comp.n_inputs, comp.n_outputs, settings, "linear", skip=settings.linear_path
    )


def init_forecaster(spec: MLPSpec, seed: int) -> Weights:
    """Hidden layers as usual; output layer and linear path zero: the output is exactly 0,
    so a forecaster predicting the change from the last reading starts as persistence."""
    weights = init_weights(spec, seed)
    last = spec.n_layers - 1
    weights[f"layers.{last}.weight"][...] = 0.0
    weights[f"layers.{last}.bias"][...] = 0.0
    if spec.skip:
        weights["skip.weight"][...] = 0.0
    return weights


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
    horizon: int = 1
    normalize: str = "standard"
    calendar: bool = False
    change: bool = False  # False: a model from before the change forecaster (level output)
    evaluation: dict[str, Any] = field(default_factory=dict)  # baselines per horizon step

    @property
    def computation(self) -> Computation:
        return Computation(self.window, len(self.channels), self.horizon, self.normalize,
                           self.calendar, self.change)

    def predict_std(self, x: np.ndarray, t: np.ndarray | None = None) -> np.ndarray:
        """Standardized predictions [N, horizon*C], step-major, for standardized windows ``x``.

        ``t``: unix time of each window's predicted (step 1) reading; needed with calendar
        inputs (``ForecastDataset.t``).
        """
        comp = self.computation
        x = np.asarray(x, np.float32)
        return comp.predictions(x, predict(self.spec, self.weights, comp.inputs(x, t)))

    def predict_next_std(self, x: np.ndarray, t: np.ndarray | None = None) -> np.ndarray:
        """Step 1 only [N, C]: what the anomaly score compares the next reading with."""
        return self.predict_std(x, t)[:, : len(self.channels)]

    def forecast(self, window_values: np.ndarray, t_next: float | None = None) -> np.ndarray:
        """Raw-unit forecast [horizon, C] of the readings after ``window_values`` [W, C]."""
        v = np.asarray(window_values, np.float64).reshape(self.window, len(self.channels))
        x = self.scaler.transform(v).reshape(1, -1)
        t = None if t_next is None else np.asarray([t_next], np.float64)
        pred = self.predict_std(x, t).reshape(self.horizon, len(self.channels))
        return self.scaler.inverse(pred)

    def window_scores(self, x: np.ndarray, y: np.ndarray, t: np.ndarray | None = None
                      ) -> np.ndarray:
        """Anomaly score of each step-1 target ``y`` [N, C or more] given its window ``x``."""
        c = len(self.channels)
        y1 = np.asarray(y)[:, :c]
        residual = np.abs(y1 - self.predict_next_std(x, t)) / self.residual_scale
        out: np.ndarray = residual.max(axis=1)
        return out

    def score_series(self, ts: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(time, score) of every reading that completes a gap-free window; may be empty."""
        try:
            ds = forecast_dataset_of(self, ts, values, horizon=1)
        except SkipTraining:
            return np.zeros(0), np.zeros(0, np.float32)
        return ds.t, self.window_scores(ds.x, ds.y, ds.t)

    def export_network(self) -> tuple[MLPSpec, Weights]:
        """The whole computation as one network, [x_std (W*C), calendar (4)?] -> predictions
        [horizon*C] standardized: what TFLite and LEM1 carry. Legacy models are unchanged."""
        if not self.change and self.normalize == "standard" and not self.spec.skip:
            return self.spec, self.weights
        return self.computation.fold(self.spec, self.weights)

    def export_inputs(self, x: np.ndarray, t: np.ndarray | None = None) -> np.ndarray:
        """The exported network's input for windows ``x``: [x_std, calendar values]."""
        x = np.asarray(x, np.float32)
        if not self.calendar:
            return x
        if t is None:
            raise ValueError("this forecaster has calendar inputs: the time is needed")
        return np.concatenate([x, calendar_features(t)], axis=1)

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
            "horizon": self.horizon,
            "normalize": self.normalize,
            "calendar": self.calendar,
            "change": self.change,
            "evaluation": self.evaluation,
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
            horizon=int(meta.get("horizon", 1)),
            normalize=str(meta.get("normalize", "standard")),
            calendar=bool(meta.get("calendar", False)),
            change=bool(meta.get("change", False)),
            evaluation=dict(meta.get("evaluation", {})),
        )


def fit_network(spec: MLPSpec, start: Weights, x: np.ndarray, y: np.ndarray,
                cfg: TrainConfig) -> Weights:
    """``train`` from ``start``; divergence or non-finite weights skip the device."""
    try:
        result = train(spec, start, x, y, cfg)
    except TrainingDiverged as exc:
        raise SkipTraining(SkipReason.DIVERGED, str(exc)) from exc
    if not all(np.all(np.isfinite(w)) for w in result.weights.values()):
        raise SkipTraining(SkipReason.DIVERGED, "training produced non-finite weights")
    return result.weights


def ridge_start(spec: MLPSpec, start: Weights, ridge: Ridge) -> Weights:
    """``start`` with its linear path set to the ridge solution (hidden path still 0)."""
    out = {k: np.array(v, np.float32) for k, v in start.items()}
    out["skip.weight"] = ridge.coef.astype(np.float32)
    out[f"layers.{spec.n_layers - 1}.bias"] = ridge.intercept.astype(np.float32)
    return out


def evaluate(model: ForecastModel, ds: ForecastDataset, ridge: Ridge | None = None
             ) -> dict[str, Any]:
    """Model, persistence, seasonal naive and ridge per horizon step on the windows ``ds``."""
    comp = model.computation
    preds = {"model": model.predict_std(ds.x, ds.t)}
    if ridge is not None:
        preds["ridge"] = comp.predictions(ds.x, ridge.predict(comp.inputs(ds.x, ds.t)))
    return baseline_table(y=ds.y, last=ds.last_inputs, seasonal=ds.seasonal,
                          channels=len(model.channels), predictions=preds)


def flat_metrics(table: dict[str, Any], prefix: str) -> dict[str, float]:
    """Step 1 (and the mean over steps) of a baseline table as flat registry metrics."""
    steps = table["steps"]
    h1 = steps["h1"]
    out = {f"{prefix}_mse": h1["model"]["mse"], f"{prefix}_mae": h1["model"]["mae"],
           f"{prefix}_persistence_mse": h1["persistence"]["mse"],
           f"{prefix}_persistence_mae": h1["persistence"]["mae"]}
    out[f"{prefix}_mae_ratio"] = out[f"{prefix}_mae"] / max(out[f"{prefix}_persistence_mae"], 1e-12)
    for name in ("ridge", "seasonal_naive"):
        if h1.get(name) is not None:
            out[f"{prefix}_{name}_mae"] = h1[name]["mae"]
    if len(steps) > 1:
        out[f"{prefix}_mae_all_steps"] = float(np.mean([s["model"]["mae"] for s in steps.values()]))
        out[f"{prefix}_persistence_mae_all_steps"] = float(
            np.mean([s["persistence"]["mae"] for s in steps.values()]))
    return out


def prepare(
    ts: np.ndarray,
    values: np.ndarray,
    channels: list[str],
    settings: TrainingSection,
    *,
    scaler: Standardizer | None = None,
    comp: Computation | None = None,
) -> tuple[ForecastDataset, Computation]:
    """One device's windows and the computation that will learn from them."""
    comp = comp or computation_for(settings, len(channels), ts)
    ds = build_forecast_dataset(
        ts, values, channels, window=settings.window, period_s=settings.period_s,
        min_windows=settings.min_windows, scaler=scaler, horizon=comp.horizon,
    )
    return ds, comp


# keyword-only beyond the model's parts, as the peer node's constructor
def finish_model(
    spec: MLPSpec,
    weights: Weights,
    ds: ForecastDataset,
    comp: Computation,
    settings: TrainingSection,
    *,
    ridge: Ridge | None = None,
    samples: int | None = None,
) -> ForecastModel:
    """Residual scale, threshold, baselines and metrics of trained ``weights`` on ``ds``."""
    c = len(ds.channels)
    tr, te = chronological_split(ds.x.shape[0], settings.test_fraction)
    model = ForecastModel(
        spec=spec, weights=weights, channels=list(ds.channels), window=ds.window,
        period_s=ds.period_s, scaler=ds.scaler, residual_scale=np.ones(c, np.float32),
        threshold=0.0, data_start=ds.data_start, data_end=ds.data_end, readings=ds.readings,
        samples=tr.stop - tr.start if samples is None else samples, horizon=comp.horizon,
        normalize=comp.normalize, calendar=comp.calendar, change=comp.change,
    )
    pred = model.predict_next_std(ds.x, ds.t)
    held = te if te.stop - te.start >= 4 else slice(0, ds.x.shape[0])
    residual = ds.y1[held] - pred[held]
    residual_scale = np.sqrt(np.mean(residual.astype(np.float64) ** 2, axis=0))
    model.residual_scale = np.maximum(residual_scale, MIN_RESIDUAL_SCALE).astype(np.float32)
    scores = (np.abs(residual) / model.residual_scale).max(axis=1)
    quantile = float(np.quantile(scores, settings.anomaly_quantile))
    model.threshold = max(settings.anomaly_min_threshold, quantile)
    metrics: dict[str, float] = {}
    if te.stop > te.start:
        model.evaluation = evaluate(model, ds.subset(te), ridge)
        metrics.update(flat_metrics(model.evaluation, "test"))
    metrics.update(flat_metrics(evaluate(model, ds.subset(tr)), "train"))
    if not all(math.isfinite(v) for v in metrics.values()):
        raise SkipTraining(SkipReason.DIVERGED, f"non-finite metrics {metrics}")
    model.metrics = metrics
    return model


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
    and the computation match; ``start_weights`` (e.g. fused peer weights) overrides the
    start point and must match the network the settings describe (else ``MLPError``).
    A fresh start is persistence, or with ``init = "ridge"`` the ridge solution on the
    linear path. Training keeps the start weights if no epoch beats them on validation.
    """
    settings = settings or TrainingSection()
    comp = computation_for(settings, len(channels), ts)
    scaler = None
    if previous is not None and previous.channels == list(channels) and (
        previous.computation == comp
    ):
        scaler = previous.scaler
    else:
        previous = None
    ds, comp = prepare(ts, values, channels, settings, scaler=scaler, comp=comp)
    spec = forecaster_spec(settings, comp)
    tr, _te = chronological_split(ds.x.shape[0], settings.test_fraction)
    f_tr = comp.inputs(ds.x[tr], ds.t[tr])
    target_tr = comp.targets(ds.x[tr], ds.y[tr])
    ridge = choose_ridge(f_tr, target_tr, settings.validation_fraction)
    if start_weights is not None:
        check_weights(spec, start_weights)  # MLPError: the caller's weights, not the data
        start = start_weights
    elif previous is not None and previous.spec == spec:
        start = previous.weights
    else:
        start = init_forecaster(spec, settings.seed)
        if settings.init == "ridge" and spec.skip:
            start = ridge_start(spec, start, ridge)
    weights = fit_network(spec, start, f_tr, target_tr, train_config(settings))
    return finish_model(spec, weights, ds, comp, settings, ridge=ridge)


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

    # the forecaster's metadata, for the classifier: the fields they share come first
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
    weights = fit_network(
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
    model: ForecastModel, ts: np.ndarray, values: np.ndarray, *, horizon: int | None = None
) -> ForecastDataset:
    """Windows of new data under an existing model's statistics (for evaluation).

    ``horizon`` defaults to the model's; scoring asks for 1, so that the last readings,
    with fewer than ``horizon`` after them, are scored too.
    """
    return build_forecast_dataset(
        ts,
        values,
        model.channels,
        window=model.window,
        period_s=model.period_s,
        min_windows=0,
        scaler=model.scaler,
        horizon=model.horizon if horizon is None else horizon,
    )
