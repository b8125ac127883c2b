"""The forecaster's computation: starts as persistence, folds exactly into the exports."""

from __future__ import annotations

import json

import numpy as np
import pytest
from learning_streams import sensor_stream

from gateway.config import TrainingSection
from gateway.data.airquality import load_airquality
from gateway.learning.baselines import choose_ridge
from gateway.learning.computation import calendar_features
from gateway.learning.dataset import build_forecast_dataset
from gateway.learning.edge_export import edge_model_bytes
from gateway.learning.forecast import (
    computation_for,
    forecast_dataset_of,
    forecaster_spec,
    init_forecaster,
    train_forecast,
)
from gateway.learning.mlp import predict
from gateway.learning.tflite_export import export_tflite, run_tflite
from shared import edge_model


@pytest.mark.parametrize("normalize", ["standard", "window"])
@pytest.mark.parametrize("horizon", [1, 4])
def test_the_untrained_network_is_exactly_persistence(normalize, horizon) -> None:
    s = sensor_stream(600)
    settings = TrainingSection(normalize=normalize, horizon=horizon, calendar="on")
    comp = computation_for(settings, len(s.channels), s.ts)
    ds = build_forecast_dataset(
        s.ts, s.values, s.channels, window=8, period_s=60.0, horizon=horizon
    )
    spec = forecaster_spec(settings, comp)
    weights = init_forecaster(spec, seed=3)
    out = predict(spec, weights, comp.inputs(ds.x, ds.t))
    assert np.all(out == 0.0)  # exactly, not approximately
    pred = comp.predictions(ds.x, out)
    np.testing.assert_array_equal(pred, np.tile(ds.last_inputs, (1, horizon)))


def test_trained_forecaster_beats_persistence_and_ridge_on_the_recording() -> None:
    rec = load_airquality().slice(0, 3000)
    model = train_forecast(rec.ts, rec.values, rec.channels, TrainingSection(period_s=3600))
    h1 = model.evaluation["steps"]["h1"]
    assert h1["model"]["mae"] < 0.85 * h1["persistence"]["mae"]
    assert h1["model"]["mae"] <= h1["ridge"]["mae"]
    assert h1["seasonal_naive"] is not None and model.evaluation["windows"] > 100
    assert model.metrics["test_ridge_mae"] == h1["ridge"]["mae"]


def test_ridge_picks_its_regularisation_on_validation() -> None:
    rng = np.random.default_rng(0)
    f = rng.normal(size=(400, 5))
    y = f @ np.array([[1.0], [-2.0], [0.5], [0.0], [0.0]]) + 0.01 * rng.normal(size=(400, 1))
    ridge = choose_ridge(f, y)
    assert ridge.lam <= 0.1  # little noise: little regularisation wins
    np.testing.assert_allclose(ridge.coef[:3, 0], [1.0, -2.0, 0.5], atol=0.02)


@pytest.fixture(scope="module")
def multi_step():
    rec = load_airquality(["T", "RH", "AH"]).slice(0, 2000)
    settings = TrainingSection(period_s=3600, horizon=3, window=6, hidden_units=10)
    model = train_forecast(rec.ts, rec.values, rec.channels, settings)
    ds = forecast_dataset_of(model, rec.ts[1500:], rec.values[1500:])
    return model, ds


def test_exports_carry_the_same_computation(multi_step) -> None:
    model, ds = multi_step
    assert model.calendar and model.horizon == 3 and model.normalize == "window"
    want = model.predict_std(ds.x, ds.t)
    spec, folded = model.export_network()
    u = model.export_inputs(ds.x, ds.t)
    np.testing.assert_allclose(predict(spec, folded, u), want, atol=2e-5)
    np.testing.assert_allclose(run_tflite(export_tflite(spec, folded), u), want, atol=2e-5)
    board = edge_model.parse_model(edge_model_bytes(model))
    assert board.horizon == 3 and board.calendar
    raw = ds.scaler.inverse(ds.x[0].reshape(model.window, 3))
    got = edge_model.predict(board, [list(r) for r in raw], int(ds.t[0]))
    np.testing.assert_allclose(got, want[0], atol=1e-4)


def test_calendar_features_are_the_boards(tmp_path, run_micropython) -> None:
    t = np.array([1_700_000_000, 1_700_040_000, 1_700_500_123], np.float64)
    want = calendar_features(t)
    script = tmp_path / "cal.py"
    script.write_text(
        "import json\n"
        "from shared.edge_model import Model\n"
        "out = []\n"
        f"for t in {json.dumps([int(v) for v in t])}:\n"
        "    m = Model(1, 1, 1.0, [0.0], [1.0], [1.0], [(5, 1, 0, None, None, None)], 0,\n"
        "              None, True)\n"
        "    m.set_time(t)\n"
        "    out.append(list(m.x[1:]))\n"
        "print(json.dumps(out))\n"
    )
    done = run_micropython(script, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    got = np.asarray(json.loads(done.stdout.strip().splitlines()[-1]))
    np.testing.assert_allclose(got, want, atol=1e-6)
