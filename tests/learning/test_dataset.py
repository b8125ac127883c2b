"""Series -> windows: resampling, gaps, standardization, and named skip reasons for bad data."""

from __future__ import annotations

import numpy as np
import pytest
from learning_streams import sensor_stream

from gateway.config import TrainingSection
from gateway.learning.dataset import (
    SkipReason,
    SkipTraining,
    build_classify_dataset,
    build_forecast_dataset,
    resample,
)
from gateway.learning.forecast import train_classifier, train_forecast


def test_resample_averages_jittered_readings_into_slots() -> None:
    ts = np.array([100.0, 160.5, 219.0, 221.0, 400.0])
    values = np.array([[1.0], [2.0], [3.0], [5.0], [7.0]])
    grid_t, grid = resample(ts, values, 60.0)
    assert grid_t.tolist() == [100.0, 160.0, 220.0, 280.0, 340.0, 400.0]
    assert grid[:, 0].tolist()[:3] == [1.0, 2.0, 4.0]
    assert np.isnan(grid[3:5, 0]).all() and grid[5, 0] == 7.0


def test_windows_spanning_a_gap_are_dropped() -> None:
    n, window = 40, 4
    ts = np.arange(n) * 10.0
    values = np.stack([np.arange(n, dtype=float), np.cos(np.arange(n))], axis=1)
    values[20, 1] = np.nan  # one channel missing in one slot
    ds = build_forecast_dataset(ts, values, ["a", "b"], window=window, period_s=10.0, min_windows=1)
    # windows cover window+1 slots; those containing slot 20 start at 16..20
    assert ds.x.shape == (n - window - 5, window * 2)
    assert not np.any(np.isnan(ds.x)) and not np.any(np.isnan(ds.y))
    expected_targets = [t for t in range(window, n) if not t - window <= 20 <= t]
    assert (ds.t / 10.0).astype(int).tolist() == expected_targets
    # record-major, oldest first: x[0] = readings 0..3 of (a, b); y[0] = reading 4
    first = ds.scaler.inverse(ds.x[0].reshape(window, 2))
    np.testing.assert_allclose(first[:, 0], [0, 1, 2, 3], atol=1e-4)
    np.testing.assert_allclose(ds.scaler.inverse(ds.y[0])[0], 4.0, atol=1e-4)
    np.testing.assert_allclose(ds.last_inputs, ds.x[:, -2:])


def test_standardization_statistics_come_with_the_dataset(stream) -> None:
    ds = build_forecast_dataset(stream.ts, stream.values, stream.channels, window=8, period_s=60.0)
    np.testing.assert_allclose(ds.scaler.mean, np.nanmean(stream.values, axis=0), rtol=1e-3)
    assert abs(float(ds.y.mean())) < 0.1 and abs(float(ds.y.std()) - 1.0) < 0.1


@pytest.mark.parametrize(
    ("case", "reason", "words"),
    [
        ("one_reading", SkipReason.TOO_FEW_READINGS, "1 readings"),
        ("empty", SkipReason.TOO_FEW_READINGS, "0 readings"),
        ("all_nan_channel", SkipReason.MISSING_CHANNEL, "'hum'"),
        ("constant_channel", SkipReason.CONSTANT_CHANNEL, "'gas'"),
        ("too_few_windows", SkipReason.TOO_FEW_WINDOWS, "need 64"),
        ("gappy", SkipReason.TOO_FEW_WINDOWS, "gap-free"),
        ("bad_shape", SkipReason.BAD_SHAPE, "3 channels"),
        ("inf_everywhere", SkipReason.MISSING_CHANNEL, "'temp'"),
    ],
)
def test_bad_data_is_a_named_skip_never_a_crash(case: str, reason: SkipReason, words: str) -> None:
    s = sensor_stream(600)
    ts, values = s.ts, s.values.copy()
    if case == "one_reading":
        ts, values = ts[:1], values[:1]
    elif case == "empty":
        ts, values = ts[:0], values[:0]
    elif case == "all_nan_channel":
        values[:, 1] = np.nan
    elif case == "constant_channel":
        values[:, 2] = 412.0
    elif case == "too_few_windows":
        ts, values = ts[:50], values[:50]
    elif case == "gappy":
        values[::5, 0] = np.nan  # every 5th reading missing: no 9-slot window survives
    elif case == "bad_shape":
        values = values[:, :2]
    elif case == "inf_everywhere":
        values[:, 0] = np.inf
    with pytest.raises(SkipTraining) as info:
        train_forecast(ts, values, s.channels, TrainingSection())
    assert info.value.reason is reason
    assert words in str(info.value)
    assert str(info.value).startswith(reason.value)


def test_classify_dataset_keeps_only_labelled_windows() -> None:
    s = sensor_stream(1200, drop_fraction=0.0)
    labels = np.full(1200, -1)
    labels[600:] = (s.values[600:, 0] > 21).astype(int)  # labels arrive for the later half
    ds = build_classify_dataset(s.ts, s.values, s.channels, labels, window=4, period_s=60.0)
    assert ds.x.shape == (600, 12)
    assert ds.classes == [0, 1]
    assert set(np.unique(ds.y).tolist()) == {0, 1}
    model = train_classifier(ds, TrainingSection(epochs=30))
    assert model.metrics["test_accuracy"] > 0.9
    assert 0.0 < model.metrics["test_macro_f1"] <= 1.0


def test_classify_without_labels_is_a_named_skip() -> None:
    s = sensor_stream(300)
    with pytest.raises(SkipTraining) as info:
        build_classify_dataset(
            s.ts, s.values, s.channels, np.full(300, -1), window=4, period_s=60.0
        )
    assert info.value.reason is SkipReason.NO_LABELS
