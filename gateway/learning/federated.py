"""One shared forecaster over several devices' windows, and its personalisation per device.

A gateway trains one network per LEARNAE round on the windows of all its devices at
once (each device standardized by its own statistics), rather than device after device
where the last device wins. After fusing, each device gets the better, on its own
validation windows (the most recent part of its training windows), of the shared
weights and a short local fine-tune of them; the shared weights are what the gateway
publishes to its peers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gateway.config import TrainingSection
from gateway.learning.baselines import Ridge, choose_ridge
from gateway.learning.computation import Computation, timestamps_are_real
from gateway.learning.dataset import ForecastDataset, Standardizer, chronological_split
from gateway.learning.forecast import fit_network, forecaster_spec, prepare, train_config
from gateway.learning.mlp import MLPSpec, TrainConfig, Weights, predict


@dataclass
class DeviceWindows:
    """One device's windows, split, with the network's inputs and targets precomputed."""

    device: str
    ds: ForecastDataset
    train: slice  # training windows (the fit part + the validation part)
    fit: slice  # the older part of ``train``: what a fine-tune learns from
    val: slice  # the newer part of ``train``: what the personalisation choice is made on
    test: slice  # the most recent windows, held out
    features: np.ndarray  # network inputs of every window
    targets: np.ndarray  # network targets of every window
    ridge: Ridge | None = None

    @property
    def samples(self) -> int:
        return int(self.train.stop - self.train.start)


def shared_computation(settings: TrainingSection, channels: int, all_ts: list[np.ndarray]
                       ) -> Computation:
    """The computation every device of a gateway shares; calendar "auto" needs every clock."""
    calendar = settings.calendar == "on" or (
        settings.calendar == "auto" and bool(all_ts) and all(timestamps_are_real(t) for t in all_ts)
    )
    return Computation(settings.window, channels, settings.horizon, settings.normalize,
                       calendar, settings.predict_change)


def device_windows(
    device: str,
    ds: ForecastDataset,
    comp: Computation,
    settings: TrainingSection,
    *,
    test: slice | None = None,
    with_ridge: bool = True,
) -> DeviceWindows:
    """Split ``ds`` chronologically (``test`` given, or the last ``test_fraction``)."""
    n = ds.x.shape[0]
    if test is None:
        train, test = chronological_split(n, settings.test_fraction)
    else:
        train = slice(0, test.start)
    fit_rel, val_rel = chronological_split(train.stop - train.start, settings.validation_fraction)
    fit = slice(train.start + fit_rel.start, train.start + fit_rel.stop)
    val = slice(train.start + val_rel.start, train.start + val_rel.stop)
    features = comp.inputs(ds.x, ds.t)
    targets = comp.targets(ds.x, ds.y)
    ridge = (choose_ridge(features[train], targets[train], settings.validation_fraction)
             if with_ridge and train.stop > train.start else None)
    return DeviceWindows(device, ds, train, fit, val, test, features, targets, ridge)


def prepare_devices(
    series: list[tuple[str, np.ndarray, np.ndarray, list[str]]],
    settings: TrainingSection,
    scalers: dict[str, Standardizer] | None = None,
) -> tuple[list[DeviceWindows], dict[str, str], Computation | None]:
    """Windows of every device that has enough; ``skipped`` maps the others to why."""
    from gateway.errors import SkipTraining

    if not series:
        return [], {}, None
    comp = shared_computation(settings, len(series[0][3]), [s[1] for s in series])
    out, skipped = [], {}
    for device, ts, values, channels in series:
        try:
            ds, _ = prepare(ts, values, channels, settings, comp=comp,
                            scaler=(scalers or {}).get(device))
        except SkipTraining as exc:
            skipped[device] = exc.detail
            continue
        out.append(device_windows(device, ds, comp, settings))
    return out, skipped, comp


def train_shared(
    spec: MLPSpec,
    start: Weights,
    devices: list[DeviceWindows],
    config: TrainConfig,
    part: str = "train",
) -> Weights:
    """One training run on the pooled windows (``part`` of each device) from ``start``."""
    f = np.concatenate([d.features[getattr(d, part)] for d in devices])
    t = np.concatenate([d.targets[getattr(d, part)] for d in devices])
    return fit_network(spec, start, f, t, config)


def mse(spec: MLPSpec, weights: Weights, d: DeviceWindows, part: str) -> float:
    rows = getattr(d, part)
    pred = predict(spec, weights, d.features[rows])
    return float(np.mean((pred.astype(np.float64) - d.targets[rows]) ** 2))


def mae(spec: MLPSpec, weights: Weights, d: DeviceWindows, part: str) -> float:
    rows = getattr(d, part)
    pred = predict(spec, weights, d.features[rows])
    return float(np.mean(np.abs(pred.astype(np.float64) - d.targets[rows])))


def personalise(
    spec: MLPSpec,
    shared: Weights,
    d: DeviceWindows,
    settings: TrainingSection,
) -> tuple[Weights, dict[str, float | str]]:
    """The better of ``shared`` and a short fine-tune of it on ``d``, judged on ``d.val``.

    Judged by MAE, as the promotion guard judges a version: chosen by squared error, a
    fine-tune that fits a few large changes better won on validation and lost on new data.
    """
    cfg = train_config(settings)
    tune = TrainConfig(epochs=max(1, settings.personalise_epochs), batch_size=cfg.batch_size,
                       learning_rate=cfg.learning_rate, l2=cfg.l2, seed=cfg.seed, patience=None,
                       huber_delta=cfg.huber_delta)
    if d.fit.stop - d.fit.start < 1 or d.val.stop - d.val.start < 1:
        return shared, {"choice": "shared"}
    tuned = fit_network(spec, shared, d.features[d.fit], d.targets[d.fit], tune)
    shared_mae, tuned_mae = mae(spec, shared, d, "val"), mae(spec, tuned, d, "val")
    figures: dict[str, float | str] = {"shared_val_mae": shared_mae, "tuned_val_mae": tuned_mae}
    if tuned_mae < shared_mae:
        figures["choice"] = "fine_tuned"
        return tuned, figures
    figures["choice"] = "shared"
    return shared, figures


def spec_for(settings: TrainingSection, comp: Computation) -> MLPSpec:
    return forecaster_spec(settings, comp)
