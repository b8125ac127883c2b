"""From a device's stored series to training arrays: resampling, gap-aware windows, scaling.

Input is what the store's ``read_series`` gives: ``ts`` (float64 unix seconds, n), ``values``
(float, [n, C], NaN where a reading is missing) and the channel names. Nothing here knows
about MQTT or SQL. Boards sample with jitter and drop readings, so the series is first put
on a regular grid (one slot per ``period_s``, the mean of the readings in it); a window is
used only if every slot in it holds every channel, so no window spans a gap.

Bad data never crashes and never yields a NaN model: it raises ``SkipTraining`` whose
``reason`` says why (a ``SkipReason``), and whose message names the device data at fault.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass

import numpy as np

from gateway.errors import SkipTraining

CONSTANT_STD = 1e-6  # a channel whose spread is below this (relative) cannot be standardised


class SkipReason(enum.StrEnum):
    BAD_SHAPE = "bad_shape"
    TOO_FEW_READINGS = "too_few_readings"
    MISSING_CHANNEL = "missing_channel"
    CONSTANT_CHANNEL = "constant_channel"
    TOO_FEW_WINDOWS = "too_few_windows"
    NO_LABELS = "no_labels"
    UNSUPPORTED = "unsupported"
    DIVERGED = "diverged"


@dataclass(frozen=True)
class Standardizer:
    """Per-channel mean and std, stored with the model (the boards need them too)."""

    mean: np.ndarray  # float32 [C]
    std: np.ndarray  # float32 [C]

    def transform(self, values: np.ndarray) -> np.ndarray:
        out: np.ndarray = ((np.asarray(values, np.float64) - self.mean) / self.std)
        return out.astype(np.float32)

    def inverse(self, values: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.asarray(values, np.float64) * self.std + self.mean
        return out

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, doc: dict[str, list[float]]) -> Standardizer:
        return cls(np.asarray(doc["mean"], np.float32), np.asarray(doc["std"], np.float32))


def check_series(
    ts: np.ndarray, values: np.ndarray, channels: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Validate shapes and return (ts, values) as float64, sorted by time, inf -> NaN."""
    ts = np.asarray(ts, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1 and len(channels) == 1:
        values = values[:, None]
    if ts.ndim != 1 or values.ndim != 2 or values.shape != (ts.shape[0], len(channels)):
        raise SkipTraining(
            SkipReason.BAD_SHAPE,
            f"ts {ts.shape}, values {values.shape} and {len(channels)} channels do not agree",
        )
    if len(channels) == 0:
        raise SkipTraining(SkipReason.BAD_SHAPE, "series has no channels")
    keep = np.isfinite(ts)
    ts, values = ts[keep], values[keep]
    values = np.where(np.isfinite(values), values, np.nan)
    order = np.argsort(ts, kind="stable")
    return ts[order], values[order]


def resample(ts: np.ndarray, values: np.ndarray, period_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean per slot of ``period_s`` seconds from the first reading; empty slots are NaN.

    Returns (slot start times [S], values [S, C]). A reading belongs to the nearest slot,
    so a board sampling every ``period_s`` with jitter fills consecutive slots.
    """
    if period_s <= 0:
        raise ValueError(f"period_s must be > 0, got {period_s!r}")
    if ts.shape[0] == 0:
        return ts.copy(), values.copy()
    slot = np.rint((ts - ts[0]) / period_s).astype(np.int64)
    n_slots = int(slot[-1]) + 1
    channels = values.shape[1]
    out = np.full((n_slots, channels), np.nan)
    for c in range(channels):
        ok = ~np.isnan(values[:, c])
        count = np.bincount(slot[ok], minlength=n_slots)
        total = np.bincount(slot[ok], weights=values[ok, c], minlength=n_slots)
        filled = count > 0
        out[filled, c] = total[filled] / count[filled]
    return ts[0] + np.arange(n_slots) * period_s, out


def complete_runs(rows_ok: np.ndarray, length: int) -> np.ndarray:
    """Start indices of every run of ``length`` consecutive True rows."""
    if rows_ok.shape[0] < length:
        return np.zeros(0, dtype=np.int64)
    csum = np.concatenate(([0], np.cumsum(rows_ok, dtype=np.int64)))
    counts = csum[length:] - csum[:-length]
    return np.flatnonzero(counts == length)


def fit_standardizer(values: np.ndarray, channels: list[str]) -> Standardizer:
    """Mean/std of every channel over finite readings; a missing or flat channel is a skip."""
    mean = np.zeros(len(channels))
    std = np.zeros(len(channels))
    for c, name in enumerate(channels):
        col = values[:, c]
        col = col[~np.isnan(col)]
        if col.size == 0:
            raise SkipTraining(SkipReason.MISSING_CHANNEL, f"channel {name!r} has no readings")
        mean[c] = col.mean()
        std[c] = col.std()
        if not std[c] > CONSTANT_STD * max(1.0, abs(mean[c])):
            raise SkipTraining(
                SkipReason.CONSTANT_CHANNEL,
                f"channel {name!r} is constant ({float(mean[c])!r}) over {col.size} readings",
            )
    return Standardizer(mean.astype(np.float32), std.astype(np.float32))


DAY_S = 86400.0


@dataclass(frozen=True)
class ForecastDataset:
    """Windows of ``window`` standardized readings -> the next ``horizon`` readings.

    ``y`` is step-major: columns ``[h*C:(h+1)*C]`` are step h+1 (step 1 first), so
    ``y[:, :C]`` is the next reading, the one the anomaly score compares with.
    ``seasonal`` is the same target slots one day earlier (standardized, NaN where that
    slot is empty or before the data), present when ``period_s`` divides a day.
    """

    x: np.ndarray  # float32 [N, window*C], oldest first, record-major
    y: np.ndarray  # float32 [N, horizon*C]
    t: np.ndarray  # float64 [N], time of the predicted (step 1) reading
    channels: list[str]
    window: int
    period_s: float
    scaler: Standardizer
    data_start: float
    data_end: float
    readings: int
    horizon: int = 1
    seasonal: np.ndarray | None = None  # float32 [N, horizon*C] or None

    @property
    def last_inputs(self) -> np.ndarray:
        """The most recent reading of every window: the persistence forecast."""
        return self.x[:, -len(self.channels) :]

    @property
    def y1(self) -> np.ndarray:
        """The step-1 targets [N, C]: the readings the anomaly score is computed on."""
        return self.y[:, : len(self.channels)]

    def subset(self, rows: slice | np.ndarray) -> ForecastDataset:
        """The same dataset restricted to some windows (e.g. the recent held-out ones)."""
        return dataclasses.replace(
            self,
            x=self.x[rows],
            y=self.y[rows],
            t=self.t[rows],
            seasonal=None if self.seasonal is None else self.seasonal[rows],
        )


def build_forecast_dataset(
    ts: np.ndarray,
    values: np.ndarray,
    channels: list[str],
    *,
    window: int,
    period_s: float,
    min_windows: int = 32,
    scaler: Standardizer | None = None,
    horizon: int = 1,
) -> ForecastDataset:
    """Self-supervised ``forecast`` dataset from one device's series (see module doc).

    ``scaler`` reuses existing statistics (a model being continued); otherwise they are
    fitted on the resampled series. A window needs ``window + horizon`` gap-free slots.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window!r}")
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon!r}")
    ts, values = check_series(ts, values, channels)
    if ts.shape[0] < window + horizon:
        raise SkipTraining(
            SkipReason.TOO_FEW_READINGS,
            f"{ts.shape[0]} readings, a window of {window} and horizon {horizon} "
            f"need at least {window + horizon}",
        )
    grid_t, grid = resample(ts, values, period_s)
    if scaler is None:
        scaler = fit_standardizer(grid, channels)
    rows_ok = ~np.isnan(grid).any(axis=1)
    starts = complete_runs(rows_ok, window + horizon)
    if starts.shape[0] < min_windows:
        raise SkipTraining(
            SkipReason.TOO_FEW_WINDOWS,
            f"{starts.shape[0]} gap-free windows of {window + horizon} slots of {period_s:g} s "
            f"from {ts.shape[0]} readings, need {min_windows}",
        )
    z = scaler.transform(np.where(np.isnan(grid), 0.0, grid))
    c = len(channels)
    n = starts.shape[0]
    idx = starts[:, None] + np.arange(window)[None, :]
    x = z[idx].reshape(n, window * c)
    targets = starts[:, None] + window + np.arange(horizon)[None, :]
    y = z[targets].reshape(n, horizon * c)
    seasonal = None
    lag = DAY_S / period_s
    if abs(lag - round(lag)) < 1e-9 and round(lag) >= 1:
        back = targets - round(lag)
        zs = scaler.transform(grid)  # NaN stays NaN
        seasonal = np.where(back[..., None] >= 0, zs[np.maximum(back, 0)], np.nan)
        seasonal = np.ascontiguousarray(seasonal.reshape(n, horizon * c), np.float32)
    return ForecastDataset(
        x=np.ascontiguousarray(x, np.float32),
        y=np.ascontiguousarray(y, np.float32),
        t=grid_t[starts + window],
        channels=list(channels),
        window=window,
        period_s=float(period_s),
        scaler=scaler,
        data_start=float(ts[0]),
        data_end=float(ts[-1]),
        readings=int(ts.shape[0]),
        horizon=horizon,
        seasonal=seasonal,
    )


@dataclass(frozen=True)
class ClassifyDataset:
    """Windows of ``window`` standardized readings -> the label of the window's last slot."""

    # the fields ForecastDataset has too (what the windows were built from): two small
    # records read more plainly than a shared base
    x: np.ndarray  # float32 [N, window*C]
    y: np.ndarray  # int64 [N], index into ``classes``
    t: np.ndarray
    classes: list[int]  # the label values seen, sorted; y indexes this list
    channels: list[str]
    window: int
    period_s: float
    scaler: Standardizer
    data_start: float
    data_end: float
    readings: int


def build_classify_dataset(
    ts: np.ndarray,
    values: np.ndarray,
    channels: list[str],
    labels: np.ndarray,
    *,
    window: int,
    period_s: float,
    min_windows: int = 32,
) -> ClassifyDataset:
    """Labelled windows for ``classify``; ``labels`` per reading, negative = unlabelled.

    A slot takes the label of its last labelled reading; a window is kept when it is
    gap-free and its last slot is labelled, so labels can arrive later for part of the data.
    """
    labels = np.asarray(labels)
    if labels.shape != (np.asarray(ts).shape[0],):
        raise SkipTraining(
            SkipReason.BAD_SHAPE, f"labels {labels.shape} do not match ts {np.shape(ts)}"
        )
    order_ts = np.asarray(ts, np.float64)
    keep = np.isfinite(order_ts)
    labels = labels[keep][np.argsort(order_ts[keep], kind="stable")].astype(np.int64)
    ts, values = check_series(ts, values, channels)
    if ts.shape[0] < window:
        raise SkipTraining(
            SkipReason.TOO_FEW_READINGS, f"{ts.shape[0]} readings, a window needs {window}"
        )
    grid_t, grid = resample(ts, values, period_s)
    slot = np.rint((ts - ts[0]) / period_s).astype(np.int64)
    slot_label = np.full(grid.shape[0], -1, dtype=np.int64)
    labelled = labels >= 0
    slot_label[slot[labelled]] = labels[labelled]  # later readings overwrite earlier ones
    if not labelled.any():
        raise SkipTraining(SkipReason.NO_LABELS, f"none of {ts.shape[0]} readings is labelled")
    scaler = fit_standardizer(grid, channels)
    starts = complete_runs(~np.isnan(grid).any(axis=1), window)
    starts = starts[slot_label[starts + window - 1] >= 0]
    if starts.shape[0] < min_windows:
        raise SkipTraining(
            SkipReason.TOO_FEW_WINDOWS,
            f"{starts.shape[0]} labelled gap-free windows of {window} slots, need {min_windows}",
        )
    classes = sorted(int(v) for v in np.unique(slot_label[starts + window - 1]))
    if len(classes) < 2:
        raise SkipTraining(SkipReason.NO_LABELS, f"only one class {classes} is labelled")
    z = scaler.transform(np.where(np.isnan(grid), 0.0, grid))
    idx = starts[:, None] + np.arange(window)[None, :]
    y = np.searchsorted(np.asarray(classes), slot_label[starts + window - 1])
    return ClassifyDataset(
        x=np.ascontiguousarray(z[idx].reshape(starts.shape[0], -1), np.float32),
        y=y.astype(np.int64),
        t=grid_t[starts + window - 1],
        classes=classes,
        channels=list(channels),
        window=window,
        period_s=float(period_s),
        scaler=scaler,
        data_start=float(ts[0]),
        data_end=float(ts[-1]),
        readings=int(ts.shape[0]),
    )


def chronological_split(n: int, test_fraction: float) -> tuple[slice, slice]:
    """(train, test) slices with the test part the most recent ``test_fraction`` of rows."""
    n_test = round(n * test_fraction)
    n_test = min(max(n_test, 1 if test_fraction > 0 else 0), max(n - 1, 0))
    return slice(0, n - n_test), slice(n - n_test, n)
