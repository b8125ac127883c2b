"""The gateway's detector: one spike one event, a level shift one event, a calibrated
threshold, irregular series that train, and the detector over any ``Predictor``."""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

import numpy as np
import pytest

from gateway.config import ConfigError, TrainingSection, config_from_dict
from gateway.errors import SkipTraining
from gateway.learning.anomaly import Calibration, Detector, DetectorSettings, unit_score
from gateway.learning.calibration import calibrate, count_events
from gateway.learning.events import EventTracker
from gateway.learning.forecast import train_forecast
from gateway.learning.regular import regularize
from gateway.learning.replay import train_and_calibrate

PERIOD = 600.0  # ten-minute readings: a day is 144 slots, longer than the window


class Persistence:
    """The simplest ``Predictor``: next reading = last reading (not the MLP)."""

    channels: ClassVar[list[str]] = ["a", "b"]
    window = 4
    period_s = PERIOD

    def predict(self, windows: np.ndarray, times: np.ndarray) -> np.ndarray:
        return np.asarray(windows[:, -1, :], np.float64)


def series(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ts = 1.7e9 + np.arange(n) * PERIOD
    day = 2 * np.pi * ts / 86400
    values = np.stack([20 + 3 * np.sin(day), 50 + 5 * np.cos(day)], axis=1)
    return ts, values + rng.normal(0, 0.3, values.shape)


def run(detector: Detector, ts: np.ndarray, values: np.ndarray) -> tuple[list, list]:
    tracker = EventTracker("dev", ["a", "b"], PERIOD, gap=2)
    events, results = [], []
    for t, x in zip(ts, values, strict=True):
        res = detector.step(float(t), x)
        results.append(res)
        for ev in tracker.update(res):
            if ev not in events:
                events.append(ev)
    tracker.close()
    return results, events


def plain(scale: float = 0.3, threshold: float = 5.0) -> Calibration:
    return Calibration.plain(np.array([scale * 1.5, scale * 1.5]), threshold)


@pytest.mark.parametrize("adapt", [True, False])
def test_one_spike_is_one_event_with_any_predictor(adapt: bool) -> None:
    ts, values = series(300)
    values[150, 0] += 10.0
    results, events = run(Detector(Persistence(), plain(), DetectorSettings(adapt=adapt)),
                          ts, values)
    assert [i for i, r in enumerate(results) if r.flag] == [150]
    assert len(events) == 1
    assert (events[0].start, events[0].end, events[0].channels) == (ts[150], ts[150], ["a"])
    assert events[0].flags == 1 and not events[0].open and events[0].kind == "anomaly"


def test_one_spike_is_one_event_with_the_trained_forecaster() -> None:
    ts, values = series(3000)
    settings = TrainingSection(period_s=PERIOD, epochs=15, window=6)
    model, cal = train_and_calibrate(ts[:2500], values[:2500], ["a", "b"], settings)
    from gateway.learning.anomaly import ForecastPredictor

    test = values[2500:].copy()
    test[200, 1] += 8.0
    results, events = run(Detector(ForecastPredictor(model), cal), ts[2500:], test)
    assert [e.start for e in events] == [ts[2700]]
    assert results[200].flag and not results[201].flag


def test_a_forecaster_with_a_horizon_and_calendar_inputs_is_scored_at_step_1() -> None:
    """The detector predicts the next reading with step 1 of a three-step forecaster that
    has calendar inputs (the slot times are passed on), and one spike is still one event."""
    from gateway.learning.anomaly import ForecastPredictor
    from gateway.learning.forecast import forecast_dataset_of

    ts, values = series(3000)
    settings = TrainingSection(period_s=PERIOD, epochs=6, window=6, horizon=3, calendar="on")
    model, cal = train_and_calibrate(ts[:2500], values[:2500], ["a", "b"], settings)
    assert model.horizon == 3 and model.calendar
    predictor = ForecastPredictor(model)
    ds = forecast_dataset_of(model, ts[2500:], values[2500:], horizon=1)
    n, c = ds.x.shape[0], len(model.channels)
    windows = model.scaler.inverse(ds.x.reshape(n * model.window, c)).reshape(n, -1, c)
    np.testing.assert_allclose(predictor.predict(windows, ds.t),
                               model.scaler.inverse(model.predict_std(ds.x, ds.t)[:, :c]),
                               rtol=1e-9, atol=1e-9)
    test = values[2500:].copy()
    test[200, 0] -= 8.0
    results, events = run(Detector(predictor, cal), ts[2500:], test)
    assert [e.start for e in events] == [ts[2700]]
    assert results[200].flag and not results[201].flag


def test_level_shift_is_one_event_and_the_new_level_is_relearned() -> None:
    ts, values = series(600)
    values[300:, 1] += 6.0  # a sensor whose offset changed for good
    settings = DetectorSettings(shift_after=6, gap=2)
    results, events = run(Detector(Persistence(), plain(), settings), ts, values)
    flags = [i for i, r in enumerate(results) if r.flag]
    assert flags and flags[0] == 300
    assert flags[-1] < 300 + settings.shift_after  # bounded: flags stop within shift_after
    assert len(events) == 1 and events[0].kind == "level_shift"


def test_a_daily_cycle_longer_than_the_window_is_not_flagged_at_its_edge() -> None:
    # a rise at 06:00 and a fall at 07:00 every day that a window of 4 ten-minute readings
    # cannot foresee (a machine that runs one hour a day)
    rng = np.random.default_rng(3)
    ts = 1.7e9 - (1.7e9 % 86400) + np.arange(144 * 40) * PERIOD
    hour = (ts % 86400) / 3600
    bump = np.where((hour >= 6) & (hour < 7), 4.0, 0.0)
    values = np.stack([20 + bump, 50 + 0 * hour], axis=1)
    values = values + rng.normal(0, 0.3, values.shape)
    cal = calibrate(Persistence(), ts[: 144 * 30], values[: 144 * 30], floor=4.0,
                    false_alarms_per_day=0.5)
    assert cal.bins > 1
    _, events = run(Detector(Persistence(), cal), ts[144 * 30 :], values[144 * 30 :])
    _, naive = run(Detector(Persistence(), plain(threshold=cal.threshold)),
                   ts[144 * 30 :], values[144 * 30 :])
    assert len(naive) >= 10  # at least one a day at the edges without the phase correction
    assert len(events) <= 2


def test_threshold_meets_the_false_alarm_budget_on_held_out_data() -> None:
    ts, values = series(144 * 30)
    strict = calibrate(Persistence(), ts, values, false_alarms_per_day=0.1, floor=1.0)
    loose = calibrate(Persistence(), ts, values, false_alarms_per_day=5.0, floor=1.0)
    assert strict.threshold > loose.threshold
    for cal, budget in ((strict, 0.1), (loose, 5.0)):
        assert cal.held_events <= budget * cal.held_days
    floored = calibrate(Persistence(), ts, values, false_alarms_per_day=5.0, floor=50.0)
    assert floored.threshold == 50.0


def test_count_events_merges_flags_within_the_gap() -> None:
    flags = np.array([1, 0, 0, 1, 0, 0, 0, 1], bool)
    assert count_events(flags, np.arange(8), gap=2) == 2
    assert count_events(flags, np.arange(8), gap=3) == 1
    assert unit_score(4.0, 4.0) == 0.5 and unit_score(None, 4.0) is None


def test_irregular_readings_are_resampled_so_they_train() -> None:
    rng = np.random.default_rng(1)
    ts, values = series(3000)
    ts = ts + rng.uniform(-0.45, 0.45, ts.shape) * PERIOD
    keep = rng.random(ts.shape) > 0.25  # a quarter of the readings never arrive
    ts, values = ts[keep], values[keep]
    settings = TrainingSection(period_s=PERIOD, epochs=3, min_windows=400)
    with pytest.raises(SkipTraining, match="too_few_windows"):
        train_forecast(ts, values, ["a", "b"], settings)
    grid_t, grid = regularize(ts, values, PERIOD, max_fill=2)
    assert np.isnan(grid).any(axis=1).mean() < 0.06  # only runs of 3+ lost readings stay gaps
    model = train_forecast(grid_t, grid, ["a", "b"], settings)
    assert model.samples >= 400


def test_regularize_keeps_long_gaps_and_anchors_the_grid() -> None:
    ts = np.array([0.0, 600.0, 1300.0, 6000.0])
    grid_t, grid = regularize(ts, np.array([[1.0], [2.0], [3.0], [4.0]]), 600.0, max_fill=2)
    assert grid_t.tolist() == [600.0 * k for k in range(11)]
    assert grid[:3, 0].tolist() == [1.0, 2.0, 3.0]
    assert np.isnan(grid[3:10, 0]).all() and grid[10, 0] == 4.0


@pytest.mark.parametrize(("key", "value", "match"), [
    ("anomaly_false_alarms_per_day", 0, "anomaly_false_alarms_per_day = 0"),
    ("anomaly_false_alarms_per_day", "many", "'many' must be a number"),
    ("anomaly_shift_after", 1, "anomaly_shift_after = 1"),
])
def test_detector_config_keys_are_validated(key: str, value: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        config_from_dict({"training": {key: value}}, env={})
    assert replace(TrainingSection()).anomaly_false_alarms_per_day == 1.0


def test_a_short_held_out_span_with_real_anomalies_still_flags_them() -> None:
    # ten readings a second: the held-out part is minutes long, and 1 % of it are spikes
    rng = np.random.default_rng(4)
    n = 3000
    ts = 1.7e9 + np.arange(n) * 0.1
    values = np.stack([20 + np.sin(np.arange(n) / 30), 50 + 0 * ts], axis=1)
    values = values + rng.normal(0, 0.05, values.shape)
    spikes = rng.choice(np.arange(20, n), 30, replace=False)
    values[spikes, 0] += 3.0

    class Fast(Persistence):
        period_s = 0.1

    cal = calibrate(Fast(), ts, values, false_alarms_per_day=1.0, floor=4.0)
    assert cal.held_days < 0.01
    assert 4.0 <= cal.threshold < 25.0  # the spikes (scores about 40) stay above it


def test_gap_threshold_splits_recurring_shapes_from_outliers() -> None:
    from gateway.learning.calibration import gap_threshold

    rng = np.random.default_rng(0)
    bulk = np.abs(rng.normal(0, 1, 5000))
    edges = rng.uniform(6, 10, 40)  # a cycle's edges: rare, recurring, moderate
    spikes = rng.uniform(60, 250, 50)  # injected anomalies: far above everything else
    th = gap_threshold(np.concatenate([bulk, edges, spikes]), 5.0)
    assert 10 < th < 60
    assert gap_threshold(np.concatenate([bulk, rng.uniform(5, 7, 30)]), 5.0) == 5.0


def test_a_channel_the_model_predicts_worse_than_persistence_is_scored_against_it() -> None:
    class Mean(Persistence):
        """A poor forecaster: always the long-run level, whatever the window shows."""

        def predict(self, windows: np.ndarray, times: np.ndarray) -> np.ndarray:
            return np.tile([20.0, 50.0], (windows.shape[0], 1))

    rng = np.random.default_rng(2)
    ts = 1.7e9 + np.arange(3000) * PERIOD
    walk = np.cumsum(rng.normal(0, 0.2, 3000))  # wanders far from the level: persistence wins
    values = np.stack([20 + walk, 50 + rng.normal(0, 0.3, 3000)], axis=1)
    cal = calibrate(Mean(), ts[:2500], values[:2500], floor=4.0)
    assert cal.persist == (True, False)
    test = values[2500:].copy()
    test[100, 0] += 3.0
    _, events = run(Detector(Mean(), cal), ts[2500:], test)
    assert [e.start for e in events if ts[2590] <= e.start <= ts[2620]] == [ts[2600]]
