"""The boards' LEM1 model: exact layout, and board scores equal to the gateway's scores,
under CPython and under the MicroPython unix port (the firmware's own parser)."""

from __future__ import annotations

import binascii
import dataclasses
import json
import struct

import numpy as np
import pytest
from learning_streams import sensor_stream

from gateway.config import TrainingSection
from gateway.learning.anomaly import Calibration, Detector, DetectorSettings, ForecastPredictor
from gateway.learning.edge_export import EdgeExportError, edge_model_args, edge_model_bytes
from gateway.learning.forecast import forecast_dataset_of, train_forecast
from shared import edge_model

W, C, HIDDEN = 5, 3, 12


@pytest.fixture(scope="module")
def model():
    s = sensor_stream(3000)
    settings = TrainingSection(window=W, hidden_units=HIDDEN, activation="tanh")
    return train_forecast(s.ts, s.values, s.channels, settings)


@pytest.fixture(scope="module")
def stretch(model):
    """Consecutive gap-free raw readings and the gateway's score of each full window."""
    s = sensor_stream(400, seed=5, n_anomalies=4, anomaly_from=0.3, drop_fraction=0.0)
    ds = forecast_dataset_of(model, s.ts, s.values)
    assert ds.x.shape[0] == 400 - W  # no gaps: every reading after the first W is scored
    # the board stamps each reading with its own clock; here the grid times the gateway used
    times = np.concatenate([s.ts[:W], ds.t])
    # the gateway's detector without its online adaptation computes what the board does,
    # flagged values replaced by their step-1 predictions included
    predictor = ForecastPredictor(model)
    detector = Detector(predictor, Calibration.plain(predictor.residual_scale, model.threshold),
                        DetectorSettings(adapt=False))
    scores = [detector.step(float(t), row).score for t, row in zip(times, s.values, strict=True)]
    assert scores[:W] == [None] * W
    detected = np.asarray(scores[W:], np.float64)
    # up to the first flag (nothing replaced yet) that is the forecaster's own window score
    plain = model.window_scores(ds.x, ds.y, ds.t)
    first = int(np.argmax(plain > model.threshold))
    assert plain[first] > model.threshold
    np.testing.assert_allclose(detected[: first + 1], plain[: first + 1], rtol=1e-5, atol=1e-6)
    return s.values, detected, times


def test_layout_byte_by_byte(model) -> None:
    data = edge_model_bytes(model)
    assert model.calendar and model.spec.skip  # the default forecaster on clocked readings
    _spec, folded = model.export_network()
    n_in = W * C + 4  # window, then the four calendar inputs
    sizes = [(n_in, HIDDEN), (HIDDEN, C)]
    linear = 6 + 4 * n_in * C
    assert len(data) == 12 + 12 * C + sum(6 + 4 * (i * o + o) for i, o in sizes) + linear + 4
    assert data[:8] == b"LEM1" + bytes([W, C, 2, 3])  # flags: linear path | calendar
    assert struct.unpack_from("<f", data, 8)[0] == pytest.approx(model.threshold)
    np.testing.assert_array_equal(np.frombuffer(data, "<f4", C, 12), model.scaler.mean)
    np.testing.assert_array_equal(np.frombuffer(data, "<f4", C, 12 + 4 * C), model.scaler.std)
    np.testing.assert_array_equal(np.frombuffer(data, "<f4", C, 12 + 8 * C), model.residual_scale)
    layer0 = 12 + 12 * C
    assert struct.unpack_from("<HHBB", data, layer0) == (n_in, HIDDEN, 2, 0)  # tanh
    np.testing.assert_array_equal(
        np.frombuffer(data, "<f4", n_in * HIDDEN, layer0 + 6).reshape(n_in, HIDDEN),
        folded["layers.0.weight"],
    )
    layer1 = layer0 + 6 + 4 * (n_in * HIDDEN + HIDDEN)
    assert struct.unpack_from("<HHBB", data, layer1) == (HIDDEN, C, 0, 0)  # linear output
    path = layer1 + 6 + 4 * (HIDDEN * C + C)
    assert struct.unpack_from("<HHBB", data, path) == (n_in, C, 0, 0)
    np.testing.assert_array_equal(
        np.frombuffer(data, "<f4", n_in * C, path + 6).reshape(n_in, C), folded["skip.weight"]
    )
    assert struct.unpack("<I", data[-4:])[0] == binascii.crc32(data[:-4])


def test_board_scores_equal_gateway_scores(model, stretch) -> None:
    values, gateway_scores, times = stretch
    board = edge_model.parse_model(edge_model_bytes(model))
    scores = [board.score([float(v) for v in row], t) for row, t in zip(values, times, strict=True)]
    assert scores[:W] == [None] * W
    np.testing.assert_allclose(scores[W:], gateway_scores, rtol=1e-4, atol=1e-4)
    assert [board.flagged(s) for s in scores[W:]] == list(gateway_scores > model.threshold)
    assert any(gateway_scores > model.threshold)  # the injected spikes are there to flag


def test_board_scores_under_micropython(model, stretch, tmp_path, run_micropython) -> None:
    values, gateway_scores, times = stretch
    (tmp_path / "model.lem").write_bytes(edge_model_bytes(model))
    (tmp_path / "rows.json").write_text(json.dumps(values[:60].tolist()))
    (tmp_path / "times.json").write_text(json.dumps([int(t) for t in times[:60]]))
    script = tmp_path / "score.py"
    script.write_text(
        "import json\n"
        "from shared.edge_model import parse_model\n"
        "m = parse_model(open('model.lem', 'rb').read())\n"
        "rows = json.load(open('rows.json'))\n"
        "times = json.load(open('times.json'))\n"
        "print(json.dumps([m.score(r, t) for r, t in zip(rows, times)]))\n"
    )
    done = run_micropython(script, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    scores = json.loads(done.stdout.strip().splitlines()[-1])
    assert scores[:W] == [None] * W
    # the board computes in single precision
    np.testing.assert_allclose(scores[W:], gateway_scores[: 60 - W], rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize(
    ("change", "message"),
    [({"window": 300}, "window 300"), ({"channels": [f"c{i}" for i in range(20)]}, "20 channels")],
)
def test_models_that_do_not_fit_a_board_are_refused(model, change, message) -> None:
    with pytest.raises(EdgeExportError, match=message):
        edge_model_args(dataclasses.replace(model, **change))
