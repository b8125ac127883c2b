"""The forecast task on a simulated stream with injected anomalies, and on the real recording."""

from __future__ import annotations

import numpy as np
from learning_streams import sensor_stream

from gateway.config import TrainingSection
from gateway.data.airquality import load_airquality
from gateway.learning.forecast import ForecastModel, forecast_dataset_of, train_forecast
from gateway.learning.metrics import forecast_report, precision_recall

PERIOD = 60.0


def test_forecaster_beats_persistence_and_flags_injected_anomalies() -> None:
    s = sensor_stream(4000, n_anomalies=20, anomaly_from=0.8, seed=0)
    cut = 3200  # train on the clean part, score the part with anomalies
    settings = TrainingSection()
    model = train_forecast(s.ts[:cut], s.values[:cut], s.channels, settings)
    assert model.metrics["test_mae"] < 0.95 * model.metrics["test_persistence_mae"]

    # Unseen data: model MAE vs persistence MAE on the clean windows of the scored part.
    new = forecast_dataset_of(model, s.ts[cut:], s.values[cut:])
    rows = cut + np.rint((new.t - s.ts[cut]) / PERIOD).astype(int)
    window_rows = rows[:, None] - np.arange(1, model.window + 1)[None, :]
    clean = ~np.isin(rows, s.anomalies) & ~np.isin(window_rows, s.anomalies).any(axis=1)
    report = forecast_report(
        model.predict_std(new.x[clean], new.t[clean]), new.y[clean], new.last_inputs[clean]
    )
    assert report["mae"] < 0.95 * report["persistence_mae"]

    t, scores = model.score_series(s.ts[cut:], s.values[cut:])
    assert np.array_equal(t, new.t) and np.all(np.isfinite(scores))
    flagged = scores > model.threshold
    truth = np.isin(rows, s.anomalies)
    # A spike also sits in the input of the next `window` predictions; flags there are
    # its echo, not a false alarm, so precision is computed over the other readings.
    echo = np.isin(window_rows, s.anomalies).any(axis=1) & ~truth
    precision, recall = precision_recall(flagged[~echo], truth[~echo])
    assert recall >= 0.95, (recall, scores[truth])
    assert precision >= 0.9, (precision, rows[flagged & ~truth & ~echo])
    # Echo flags (a spike still in the window) are bounded here; the scorer removes them
    # by replacing a flagged reading with its prediction in the windows that follow.
    echoes = int(np.count_nonzero(flagged & echo))
    assert echoes <= 2 * int(truth.sum()), (echoes, int(truth.sum()))


def test_model_round_trips_through_metadata_and_continues(stream) -> None:
    settings = TrainingSection(epochs=5, patience=0)
    first = train_forecast(stream.ts[:2000], stream.values[:2000], stream.channels, settings)
    meta = first.metadata()
    assert meta["window"] == 8 and meta["channels"] == ["temp", "hum", "gas"]
    again = ForecastModel.from_metadata(meta, first.weights)
    ds = forecast_dataset_of(first, stream.ts, stream.values)
    np.testing.assert_array_equal(
        again.window_scores(ds.x, ds.y, ds.t), first.window_scores(ds.x, ds.y, ds.t)
    )

    more = train_forecast(stream.ts, stream.values, stream.channels, settings, previous=first)
    # continuing keeps the stored standardization and starts from the previous weights
    np.testing.assert_array_equal(more.scaler.mean, first.scaler.mean)
    # ... and, keeping the start when no epoch beats it, is no worse on its training windows
    ds_all = forecast_dataset_of(more, stream.ts, stream.values)
    n_tr = more.samples

    def train_mse(m: ForecastModel) -> float:
        pred = m.predict_std(ds_all.x[:n_tr], ds_all.t[:n_tr])
        return float(np.mean((pred - ds_all.y[:n_tr]) ** 2))

    assert train_mse(more) <= train_mse(first) * 1.01
    assert all(np.all(np.isfinite(w)) for w in more.weights.values())


def test_forecast_on_the_bundled_airquality_recording() -> None:
    rec = load_airquality().slice(0, 3000)  # four months, with the file's -200 gaps
    settings = TrainingSection(period_s=3600.0, window=6, epochs=30, min_windows=100)
    model = train_forecast(rec.ts, rec.values, rec.channels, settings)
    assert model.channels == list(rec.channels)
    assert model.metrics["test_mse"] < model.metrics["test_persistence_mse"]
    assert model.data_start == rec.ts[0] and model.data_end == rec.ts[-1]
    assert np.all(model.residual_scale > 0) and model.threshold >= 4.0


def test_start_weights_must_match_the_network(stream) -> None:
    import pytest

    from gateway.learning.mlp import MLPError, MLPSpec, init_weights

    wrong = init_weights(MLPSpec((10, 4, 2)), 0)
    with pytest.raises(MLPError, match=r"missing|shape"):
        train_forecast(stream.ts, stream.values, stream.channels, start_weights=wrong)


def test_divergence_is_a_named_skip(stream) -> None:
    import pytest

    from gateway.errors import SkipTraining
    from gateway.learning.dataset import SkipReason

    absurd = TrainingSection(learning_rate=1e30)  # Adam steps of 1e30 overflow float32
    with pytest.raises(SkipTraining) as info:
        train_forecast(stream.ts, stream.values, stream.channels, absurd)
    assert info.value.reason is SkipReason.DIVERGED
