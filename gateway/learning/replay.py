"""A history streamed through the gateway's detector exactly as it runs live.

Rows arrive in time order. Before the first model the detector stands on persistence, as
live (``gateway.learning.calibration.before_model``: calibrated on the rows arrived so far,
again each time they have doubled, scoring from the first row on). The first model is
trained once the first ``train_fraction`` of the rows has arrived, and retrained, as the
scheduler does,
whenever ``min_new_readings`` rows have arrived since the last attempt (on the newest
``max_readings``), continuing the current model. Each model is calibrated to the false-alarm
budget on the held-out part of its own training data and passes the promotion guard
(``gateway.learning.promotion``): only a promoted model is swapped into the running
detector; a rejected one is counted with its reason and the current model keeps scoring.
Every slot of the regular grid is fed to the detector in order; each input row gets the
result of its slot.

The grid is built from all rows at once: live, a slot is scored once a later reading has
arrived (at most ``max_fill`` slots later when it is interpolated), which gives the same values.
"""

from __future__ import annotations

import collections
import csv
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gateway.config import TrainingSection
from gateway.errors import SkipTraining
from gateway.learning.anomaly import (
    DAY_S,
    Calibration,
    Detector,
    DetectorSettings,
    ForecastPredictor,
    StepResult,
    unit_score,
)
from gateway.learning.calibration import (
    MIN_WINDOWS_BEFORE_MODEL,
    before_model,
    calibrated_metadata,
)
from gateway.learning.dataset import SkipReason
from gateway.learning.events import AnomalyEvent, EventTracker
from gateway.learning.forecast import ForecastModel, train_forecast
from gateway.learning.promotion import judge
from gateway.learning.regular import regularize, slot_of


@dataclass
class ReplayOutput:
    t: np.ndarray  # [n] time of each input row
    score: list[float | None]  # s / (s + threshold), None when not scored
    flag: np.ndarray  # bool [n]
    event: list[int | None]  # event id of each flagged row
    events: list[AnomalyEvent] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def median_period(ts: np.ndarray) -> float:
    """The typical spacing of the readings (median positive difference), seconds."""
    d = np.diff(np.sort(np.asarray(ts, np.float64)))
    d = d[d > 0]
    if d.shape[0] == 0:
        raise ValueError("fewer than two distinct times: no sampling period")
    return float(np.median(d))


def train_and_calibrate(ts: np.ndarray, values: np.ndarray, channels: list[str],
                        settings: TrainingSection, origin: float = 0.0, *,
                        previous: ForecastModel | None = None, board: bool = False
                        ) -> tuple[Any, Calibration]:
    """What the scheduler does per attempt: train on the regular grid (continuing
    ``previous``, the current model), then calibrate.

    ``board`` gives the board's computation instead (the model's residual scale, the
    board's threshold, no phase correction). Raises ``SkipTraining`` (with its reason)
    when the data cannot train a model.
    """
    grid_t, grid = regularize(ts, values, settings.period_s, settings.anomaly_max_fill, origin)
    model = train_forecast(grid_t, grid, channels, settings, previous=previous)
    meta = calibrated_metadata(model, grid_t, grid, settings)
    if "detector" not in meta:
        raise SkipTraining(SkipReason.TOO_FEW_WINDOWS, "too few windows to calibrate the "
                           "detector's threshold")
    if board:
        return model, Calibration.plain(ForecastPredictor(model).residual_scale,
                                        float(meta["threshold"]))
    return model, Calibration.from_dict(meta["detector"])


def replay(ts: np.ndarray, values: np.ndarray, channels: list[str],
           settings: TrainingSection | None = None, *, train_fraction: float = 0.15,
           device: str = "replay", progress: Callable[[str], None] | None = None,
           board: bool = False) -> ReplayOutput:
    """Stream the rows (time-ordered) through training, calibration and the detector;
    ``board``: the board's LEM scorer instead (replacement, no adaptation)."""
    settings = settings or TrainingSection()
    if not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction {train_fraction!r} is outside (0, 1)")
    ts = np.asarray(ts, np.float64)
    values = np.asarray(values, np.float64).reshape(ts.shape[0], len(channels))
    n = ts.shape[0]
    period = settings.period_s
    origin = float(ts[0]) if n else 0.0  # slots at reading times: events at reading times
    grid_t, grid = regularize(ts, values, period, settings.anomaly_max_fill, origin)
    row_slot = (slot_of(ts, period, origin) - slot_of(grid_t[0], period, origin) if n
                else np.zeros(0, np.int64))
    # rows arrived by the end of each slot
    arrived = np.searchsorted(row_slot, np.arange(grid_t.shape[0]), side="right")
    first = max(math.ceil(train_fraction * n), 1)
    results: list[StepResult | None] = [None] * grid_t.shape[0]
    units: list[float | None] = [None] * grid_t.shape[0]
    skip_reasons: collections.Counter[str] = collections.Counter()
    training_skips: collections.Counter[str] = collections.Counter()
    rejections: collections.Counter[str] = collections.Counter()
    current: ForecastModel | None = None  # the promoted model the detector scores with
    current_number: int | None = None  # its training attempt (1 = the first)
    detector: Detector | None = None
    tracker = EventTracker(device, channels, period, settings.anomaly_event_gap)
    events: list[AnomalyEvent] = []
    slot_event: dict[int, int] = {}
    last_attempt = -1
    trainings = 0
    threshold = math.nan
    det_settings = DetectorSettings(shift_after=settings.anomaly_shift_after,
                                    gap=settings.anomaly_event_gap, adapt=not board)
    # the board has no detector before its first model (its threshold rules flag)
    persistence_tried = -1 if board else (
        max(settings.min_windows, MIN_WINDOWS_BEFORE_MODEL) + settings.window) // 2

    def step(det: Detector, k: int) -> None:
        res = det.step(float(grid_t[k]), grid[k])
        results[k] = res
        units[k] = unit_score(res.score, det.threshold)
        for ev in tracker.update(res):
            if ev.id is None:
                ev.id = len(events) + 1
                events.append(ev)
        if res.flag and tracker.current is not None:
            slot_event[k] = int(tracker.current.id or 0)

    for s in range(grid_t.shape[0]):
        if detector is not None:
            step(detector, s)
        # the rows of this slot are stored; the scheduler then looks at what has arrived
        have = int(arrived[s])
        if current is None and persistence_tried >= 0 and have >= 2 * persistence_tried:
            persistence_tried = have
            made = before_model(ts[:have], values[:have], channels, settings, origin)
            if made is not None:
                threshold = made[1].threshold
                if detector is None:  # scores what has arrived, from the first row on
                    detector = Detector(made[0], made[1], det_settings)
                    for k in range(s + 1):
                        step(detector, k)
                else:
                    detector.swap(*made)
        due = have >= first if last_attempt < 0 else (
            have - last_attempt >= max(settings.min_new_readings, 1))
        if not due:
            continue
        last_attempt = have
        lo = max(0, have - settings.max_readings) if settings.max_readings else 0
        try:
            model, cal = train_and_calibrate(ts[lo:have], values[lo:have], channels, settings,
                                             origin, previous=current, board=board)
        except SkipTraining as exc:
            training_skips[exc.reason.value] += 1
            if progress:
                progress(f"training at row {have} skipped: {exc}")
            continue
        trainings += 1
        # the promotion guard, as the scheduler applies it, on the same grid
        decision = judge(model, current, *regularize(ts[lo:have], values[lo:have], period,
                                                     settings.anomaly_max_fill, origin),
                         test_fraction=settings.test_fraction, current_version=current_number)
        if not decision.promoted:
            rejections[decision.code] += 1
            if progress:
                progress(f"model {trainings} at row {have} rejected: {decision.reason}")
            continue
        current, current_number = model, trainings
        threshold = cal.threshold
        predictor = ForecastPredictor(model)
        if detector is None:
            detector = Detector(predictor, cal, det_settings)
            for k in range(max(0, s + 1 - model.window), s + 1):  # warm up on what is stored
                detector.step(float(grid_t[k]), grid[k])
        else:
            detector.swap(predictor, cal)
        if progress:
            progress(f"model {trainings} at row {have}: threshold {cal.threshold:.2f}, "
                     f"held-out {cal.held_events} events in {cal.held_days:.1f} days")
    tracker.close()
    score: list[float | None] = []
    flag = np.zeros(n, bool)
    event: list[int | None] = []
    for i in range(n):
        s = int(row_slot[i])
        row_res = results[s]
        empty = bool(np.isnan(values[i]).all())  # a row without values is not scored
        if row_res is None:
            skip_reasons["no_model_yet"] += 1
        elif row_res.score is None or empty:
            skip_reasons["gap" if empty else (row_res.reason or "not_scored")] += 1
        score.append(None if empty else units[s])
        flag[i] = bool(row_res is not None and row_res.flag and not empty)
        event.append(slot_event.get(s) if flag[i] else None)
    scored = sum(1 for v in score if v is not None)
    scored_t = [float(ts[i]) for i in range(n) if score[i] is not None]
    days = (scored_t[-1] - scored_t[0] + period) / DAY_S if scored_t else 0.0
    summary = {
        "rows": n, "scored": scored, "flags": int(flag.sum()), "events": len(events),
        "scored_days": round(days, 2),
        "events_per_day": round(len(events) / days, 3) if days else None,
        "level_shifts": sum(1 for e in events if e.kind == "level_shift"),
        "retrainings": max(trainings - 1, 0), "trainings": trainings,
        "skips": dict(sorted(skip_reasons.items())),
        "training_skips": dict(sorted(training_skips.items())),
        "rejections": dict(sorted(rejections.items())),
        "period_s": period, "threshold": None if math.isnan(threshold) else threshold,
        "first_training_row": first,
    }
    return ReplayOutput(ts, score, flag, event, events, summary)


@dataclass(frozen=True)
class Injected:
    values: np.ndarray  # the series with the anomalies added
    spikes: list[int]  # rows of the injected spikes
    shift: int | None  # first row of the level shift, if any


def inject(values: np.ndarray, *, spikes: int = 0, shift: bool = False, start: int = 0,
           spike_size: float = 5.0, shift_size: float = 3.0, shift_channel: int = 0,
           seed: int = 0) -> Injected:
    """Add ``spikes`` one-reading spikes (``spike_size`` x the channel's std, one random
    channel each) at evenly spread rows after ``start``, and optionally a level shift
    (``shift_size`` x std of channel ``shift_channel``: a sensor whose offset changed)
    from 70 % of the rows after ``start`` on.

    Spikes keep clear of the shift (and of each other) by two days of rows so that every
    injected anomaly can be told apart.
    """
    rng = np.random.default_rng(seed)
    out = np.array(values, np.float64, copy=True)
    n, c = out.shape
    std = np.nanstd(out, axis=0)
    span = n - start
    shift_row = start + int(0.7 * span) if shift else None
    rows: list[int] = []
    if spikes:
        edges = np.linspace(start, n, spikes + 2)[1:-1]
        for e in edges:
            r = int(e + rng.integers(-3, 4))
            if shift_row is not None and abs(r - shift_row) < 48:
                r = shift_row - 48 if r < shift_row else shift_row + 48
            r = min(max(r, start + 1), n - 2)
            j = int(rng.integers(0, c))
            while r < n - 3 and np.isnan(out[max(r - 12, 0) : r + 3]).any():
                r += 1  # a spike amid complete readings (where it can be scored), not in a gap
            if np.isnan(out[r, j]):
                continue
            out[r, j] += spike_size * std[j] * (1 if rng.random() < 0.5 else -1)
            rows.append(r)
    if shift_row is not None:
        out[shift_row:, shift_channel] += shift_size * std[shift_channel]
    return Injected(out, rows, shift_row)


def judge_injected(out: ReplayOutput, injected: Injected, shift_channel: str | None,
                   gap: int = 2) -> dict[str, Any]:
    """How the replay flagged what was injected: events per spike, and the shift's event.

    A spike is "one event" when exactly one event overlaps its row and the ``gap`` rows
    after it and that event contains the spike row. For the shift: the events on the shifted
    channel that overlap the day from its start (one may begin a reading early), the hours
    from the shift to the end of the first, and the flags on the shifted channel's events
    from one day to eight days after the shift.
    """
    t = out.t
    per_spike = []
    for r in injected.spikes:
        lo, hi = t[r], t[min(r + gap, t.shape[0] - 1)]
        hits = [e for e in out.events if e.start <= hi and e.end >= lo]
        per_spike.append(len(hits) if any(e.start <= t[r] <= e.end for e in hits) else 0)
    doc: dict[str, Any] = {"spikes": len(injected.spikes), "events_per_spike": per_spike,
                           "spikes_one_event": sum(1 for k in per_spike if k == 1)}
    if injected.shift is not None:
        t0 = t[injected.shift]
        near = [e for e in out.events if e.end >= t0 and e.start <= t0 + DAY_S
                and (shift_channel is None or shift_channel in e.channels)]
        later = [e for e in out.events if t0 + DAY_S < e.start <= t0 + 8 * DAY_S
                 and shift_channel in e.channels]
        doc.update(shift_row=injected.shift, shift_events=len(near),
                   shift_event_hours=(near[0].end - t0) / 3600.0 if near else None,
                   shift_channel=shift_channel,
                   shift_channel_flags_day1_to_day8=sum(e.flags for e in later))
    return doc


def write_scores(path: Path, out: ReplayOutput) -> None:
    """One CSV row per input row: time, score (s/(s+threshold)), flag, event id."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["time", "score", "flag", "event"])
        for i in range(out.t.shape[0]):
            score = out.score[i]
            writer.writerow([repr(float(out.t[i])), "" if score is None else f"{score:.6f}",
                             int(out.flag[i]), "" if out.event[i] is None else out.event[i]])
