"""The detector's calibration: phase statistics and a threshold on held-out data.

``calibrate`` fits, on a forecaster's own training series, the per-phase bias and scale of
its residuals (older part) and the threshold that meets the false-alarm budget (newest
part); ``calibrated_metadata`` stores the result with a trained model;
``before_model`` calibrates persistence for a device that has no model yet (see
``gateway.learning.anomaly`` for the detector that uses it, and docs/learning.md).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gateway.learning.anomaly import (
    DAY_S,
    GAP_RATIO,
    MIN_COUNTED_EVENTS,
    SHRINK,
    Calibration,
    ForecastPredictor,
    PersistencePredictor,
    Predictor,
    phase_bins,
    phase_of,
)
from gateway.learning.regular import regularize, slot_of

TAIL_EXTREMES = 10  # held-out windows the tail fit leaves out, at least


def count_events(flags: np.ndarray, slots: np.ndarray, gap: int) -> int:
    """Runs of flags, where flags at most ``gap`` unflagged slots apart are one run."""
    idx = slots[flags]
    if idx.shape[0] == 0:
        return 0
    return int(1 + np.count_nonzero(np.diff(idx) > gap + 1))


def budget_threshold(scores: np.ndarray, slots: np.ndarray, allowed: int, floor: float,
                     gap: int) -> float:
    """The lowest threshold >= ``floor`` at which ``scores`` raise at most ``allowed`` events."""
    if count_events(scores > floor, slots, gap) <= allowed:
        return float(floor)
    candidates = np.unique(scores[scores > floor])  # ascending; flag is score > threshold
    lo, hi = 0, candidates.shape[0] - 1  # candidates[hi] (the max) flags nothing
    while lo < hi:
        mid = (lo + hi) // 2
        if count_events(scores > candidates[mid], slots, gap) <= allowed:
            hi = mid
        else:
            lo = mid + 1
    return float(candidates[lo])


def tail_threshold(scores: np.ndarray, per_reading: float, floor: float) -> float:
    """The threshold whose exceedance rate per reading is ``per_reading``, extrapolated
    from the bulk of the scores: an exponential tail, its scale from two upper quantiles (the
    90th and 97.5th percentiles: ``q97.5 - q90 = beta ln 4`` for such a tail). The extremes
    (real anomalies among the held-out readings, up to 2.5 % of them, and at least the top
    ``TAIL_EXTREMES`` when there are fewer than 400) do not move it, which is why it serves
    when the held-out span is too short to count events: a few spikes in a short held-out
    span (each is two or three windows) would otherwise set the threshold above themselves."""
    s = scores[np.isfinite(scores)]
    if s.shape[0] < 20 or not per_reading > 0:
        return float(floor)
    p_hi = min(max(0.025, TAIL_EXTREMES / s.shape[0]), 0.2)  # tail probability of the upper
    p_lo = min(4.0 * p_hi, 0.5)
    x0, x1 = (float(q) for q in np.quantile(s, [1.0 - p_lo, 1.0 - p_hi]))
    beta = (x1 - x0) / math.log(p_lo / p_hi)
    th = x1 + beta * math.log(p_hi / per_reading) if per_reading < p_hi else x1
    return float(max(floor, th))


def gap_threshold(scores: np.ndarray, low: float) -> float:
    """Above ``low``: the middle (geometric) of the widest gap, by ratio, between the sorted
    scores over ``low`` (``low`` itself counting as the lowest), when that gap is at least
    ``GAP_RATIO``; else ``low``. What lies below the gap (rare but recurring shapes, such as
    the edges of a cycle longer than the window) is taken as normal; the cluster above it
    as the anomalies the held-out span happens to hold."""
    top = np.sort(scores[np.isfinite(scores) & (scores > low)])
    if top.shape[0] == 0 or not low > 0:
        return float(low)
    vals = np.concatenate(([low], top))
    ratios = vals[1:] / vals[:-1]
    k = int(np.argmax(ratios))
    if ratios[k] < GAP_RATIO:
        return float(low)
    return float(math.sqrt(vals[k] * vals[k + 1]))


def _windows(grid_t: np.ndarray, grid: np.ndarray, w: int) -> tuple[np.ndarray, ...]:
    ok = ~np.isnan(grid).any(axis=1)
    csum = np.concatenate(([0], np.cumsum(ok, dtype=np.int64)))
    starts = np.zeros(0, np.int64)
    if ok.shape[0] > w:
        starts = np.flatnonzero(csum[w + 1 :] - csum[: -w - 1] == w + 1)
    idx = starts[:, None] + np.arange(w)[None, :]
    return grid[idx], grid[starts + w], grid_t[starts + w]


def _robust_rms(r: np.ndarray, axis: int = 0) -> np.ndarray:
    """RMS of the residuals within 4 robust standard deviations of their median: the spikes
    in the training data do not count, even when they are a few percent of it (each spike
    also leaves a second residual, its drop back). The robust deviation is 1.4826 x the
    median absolute deviation, and the result at least a tenth of the plain RMS, so that a
    bulk of near-identical residuals (a noise-free signal) does not shrink it to nothing."""
    med = np.median(r, axis=axis, keepdims=True)
    mad = 1.4826 * np.median(np.abs(r - med), axis=axis, keepdims=True)
    rms = np.sqrt(np.mean(r**2, axis=axis, keepdims=True))
    keep = np.abs(r - med) <= 4 * np.maximum(np.maximum(mad, 0.1 * rms), 1e-12)
    total = np.sum(np.where(keep, r**2, 0.0), axis=axis)
    kept = np.sqrt(total / np.maximum(np.sum(keep, axis=axis), 1))
    return np.asarray(np.maximum(kept, 0.1 * np.squeeze(rms, axis=axis)), np.float64)


def calibrate(predictor: Predictor, ts: np.ndarray, values: np.ndarray, *,
              false_alarms_per_day: float = 1.0, floor: float = 4.0, held_fraction: float = 0.2,
              max_fill: int = 2, gap: int = 2, board_scale: np.ndarray | None = None,
              origin: float | None = None) -> Calibration:
    """Phase bias and scale from the older part of the series, threshold on the newest part.

    The newest ``held_fraction`` of the gap-free windows is held out; the threshold is the
    lowest (>= ``floor``) at which it raises at most ``false_alarms_per_day`` events per day
    of held-out time. When that span allows fewer than ``MIN_COUNTED_EVENTS`` events (less
    than ten days at one a day), counting cannot tell a budget from the real anomalies in it:
    the threshold is then extrapolated from the bulk of the scores (``tail_threshold``) and
    raised into a clear gap above it if the scores have one (``gap_threshold``).
    ``board_scale`` (the model's own residual scale) gets its own threshold for the board's
    scorer, which has no phase correction. Raises ValueError without windows.
    """
    start = float(np.nanmin(ts)) if origin is None and len(ts) else (origin or 0.0)
    grid_t, grid = regularize(ts, values, predictor.period_s, max_fill, start)
    x, y, t = _windows(grid_t, grid, predictor.window)
    n = y.shape[0]
    if n < 8:
        raise ValueError(f"{n} gap-free windows, calibration needs at least 8")
    resid = y - predictor.predict(x, t)
    n_held = min(max(round(n * held_fraction), 4), n - 4)
    fit, held = slice(0, n - n_held), slice(n - n_held, n)
    # a channel the forecaster predicts worse than persistence is scored against persistence
    last = y - x[:, -1, :]
    persist = _robust_rms(last[held]) < _robust_rms(resid[held])
    resid = np.where(persist, last, resid)
    bins = phase_bins(predictor.period_s, predictor.window)
    phase = phase_of(t, bins)
    g_bias = np.median(resid[fit], axis=0)
    g_scale = np.maximum(_robust_rms(resid[fit] - g_bias), 1e-9)
    bias = np.tile(g_bias, (bins, 1))
    scale = np.tile(g_scale, (bins, 1))
    for b in range(bins) if bins > 1 else ():
        r = resid[fit][phase[fit] == b]
        if r.shape[0]:
            k = r.shape[0]
            bias[b] = (k * np.median(r, axis=0) + SHRINK * g_bias) / (k + SHRINK)
            var = _robust_rms(r - bias[b]) ** 2
            scale[b] = np.sqrt((k * var + SHRINK * g_scale**2) / (k + SHRINK))
    # held-out residuals in units of the fitted scale should have unit spread: the fit part
    # is the model's training data, whose residuals are optimistic
    rel = (resid[held] - bias[phase[held]]) / scale[phase[held]]
    scale = scale * max(float(np.median(_robust_rms(rel))), 1e-3)
    # a perfectly predictable channel would make any rounding an alarm: at least 1e-3 of its
    # spread (as forecast.MIN_RESIDUAL_SCALE in standardized units)
    spread = np.nanstd(grid, axis=0)
    scale = np.maximum(scale, np.maximum(1e-3 * np.where(np.isfinite(spread), spread, 0.0),
                                         1e-9))
    slots = slot_of(t[held], predictor.period_s, start)
    days = (float(t[held][-1] - t[held][0]) + predictor.period_s) / DAY_S
    budget = false_alarms_per_day * days
    per_reading = false_alarms_per_day * predictor.period_s / DAY_S

    def pick(s: np.ndarray) -> float:
        if budget < MIN_COUNTED_EVENTS:  # too short a span to count on: extrapolate
            return gap_threshold(s, tail_threshold(s, per_reading, floor))
        return budget_threshold(s, slots, math.floor(budget), floor, gap)

    scores = np.nanmax(np.abs(resid[held] - bias[phase[held]]) / scale[phase[held]], axis=1)
    threshold = pick(scores)
    board = threshold
    if board_scale is not None:
        # the board runs the forecaster on every channel (it has no persistence fallback)
        model_resid = y[held] - predictor.predict(x[held], t[held])
        board = pick(np.nanmax(np.abs(model_resid) / np.asarray(board_scale, np.float64),
                               axis=1))
    return Calibration(threshold=threshold, bias=bias, scale=scale, bins=bins,
                       board_threshold=board, held_days=days,
                       held_events=count_events(scores > threshold, slots, gap),
                       persist=tuple(bool(v) for v in persist))


def calibrated_metadata(model: Any, ts: np.ndarray, values: np.ndarray, settings: Any
                        ) -> dict[str, Any]:
    """A trained forecaster's registry metadata with the detector's calibration on its own
    training series: ``detector`` (for the gateway) and ``threshold`` (for the board's LEM
    scorer), both set to the false-alarm budget. Too little data keeps the model's own."""
    meta: dict[str, Any] = model.metadata()
    predictor = ForecastPredictor(model)
    try:
        cal = calibrate(predictor, ts, values,
                        false_alarms_per_day=settings.anomaly_false_alarms_per_day,
                        floor=settings.anomaly_min_threshold,
                        held_fraction=settings.test_fraction, max_fill=settings.anomaly_max_fill,
                        gap=settings.anomaly_event_gap, board_scale=predictor.residual_scale)
    except ValueError:
        return meta
    meta["threshold"] = cal.board_threshold
    meta["detector"] = cal.to_dict()
    return meta


MIN_WINDOWS_BEFORE_MODEL = 32  # the fewest gap-free windows persistence is calibrated on


def before_model(ts: np.ndarray, values: np.ndarray, channels: list[str], settings: Any,
                 origin: float | None = None) -> tuple[PersistencePredictor, Calibration] | None:
    """The detector of a device without a model: persistence, calibrated to the false-alarm
    budget on the readings it has; None while they hold fewer gap-free windows than a
    training needs (``min_windows``, at least ``MIN_WINDOWS_BEFORE_MODEL``): calibrated on
    fewer, real series' tails raise false alarms."""
    predictor = PersistencePredictor(list(channels), settings.window, settings.period_s)
    start = float(np.nanmin(ts)) if origin is None and len(ts) else origin
    grid_t, grid = regularize(ts, values, settings.period_s, settings.anomaly_max_fill,
                              start or 0.0)
    need = max(settings.min_windows, MIN_WINDOWS_BEFORE_MODEL)
    if _windows(grid_t, grid, settings.window)[1].shape[0] < need:
        return None
    cal = calibrate(predictor, ts, values,
                    false_alarms_per_day=settings.anomaly_false_alarms_per_day,
                    floor=settings.anomaly_min_threshold, held_fraction=settings.test_fraction,
                    max_fill=settings.anomaly_max_fill, gap=settings.anomaly_event_gap,
                    origin=start)
    return predictor, cal
