"""A gateway's LEARNAE round step: one network on all devices' windows, then per device."""

from __future__ import annotations

import numpy as np
from learning_streams import sensor_stream

from gateway.config import TrainingSection
from gateway.learning.federated import personalise, prepare_devices, spec_for, train_shared
from gateway.learning.forecast import init_forecaster, train_config
from gateway.learning.mlp import predict
from gateway.learning.pipeline import TrainingJob, train_candidates

SETTINGS = TrainingSection(epochs=10)


def two_devices():
    a = sensor_stream(1500, seed=1)
    b = sensor_stream(1500, seed=2)
    b.values[:] = b.values * 3.0 + 100.0  # another site: other levels and spreads
    return [("a", a.ts, a.values, a.channels), ("b", b.ts, b.values, b.channels)]


def test_one_shared_network_serves_every_device_with_its_own_standardization() -> None:
    series = two_devices()
    devices, skipped, comp = prepare_devices(series, SETTINGS)
    assert skipped == {} and comp is not None and len(devices) == 2
    assert not np.allclose(devices[0].ds.scaler.mean, devices[1].ds.scaler.mean)
    spec = spec_for(SETTINGS, comp)
    start = init_forecaster(spec, 0)
    shared = train_shared(spec, start, devices, train_config(SETTINGS))
    for d in devices:  # the shared network beats persistence on each device's own test part
        rows = d.test
        err = np.abs(predict(spec, shared, d.features[rows]) - d.targets[rows]).mean()
        persistence = np.abs(d.targets[rows]).mean()  # a zero change is persistence
        assert err < 0.95 * persistence, d.device
        weights, choice = personalise(spec, shared, d, SETTINGS)
        assert choice["choice"] in ("shared", "fine_tuned")
        if choice["choice"] == "shared":
            assert weights is shared
        else:
            assert choice["tuned_val_mae"] < choice["shared_val_mae"]


def test_round_step_returns_shared_weights_and_guarded_versions() -> None:
    series = two_devices()
    _devices, _, comp = prepare_devices(series, SETTINGS)
    assert comp is not None
    start = init_forecaster(spec_for(SETTINGS, comp), 0)
    out = train_candidates(TrainingJob(series, SETTINGS, start=start))
    assert out.shared is not None and set(out.shared) == set(start)
    assert not np.array_equal(out.shared["skip.weight"], start["skip.weight"])
    assert [c.device for c in out.candidates] == ["a", "b"]
    for candidate in out.candidates:
        meta = candidate.metadata
        assert candidate.promoted and candidate.result == "promoted"
        assert meta["personalisation"]["choice"] in ("shared", "fine_tuned")
        assert meta["promotion"]["promoted"], meta["promotion"]  # beats persistence
        assert meta["evaluation"]["steps"]["h1"]["ridge"] is not None
