"""Model registry: versions with metrics, data range and CIDs, in its own SQLite tables."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from gateway.learning.mlp import MLPSpec, init_weights
from gateway.learning.registry import ModelRegistry, RegistryError

META = {
    "task": "forecast",
    "data_start": 100.0,
    "data_end": 200.0,
    "readings": 50,
    "samples": 40,
    "metrics": {"test_mae": 0.5},
}


def test_register_get_latest_and_cids(tmp_path) -> None:
    path = tmp_path / "gateway.sqlite3"
    weights = init_weights(MLPSpec((4, 3, 2)), 0)
    with ModelRegistry(path) as reg:
        v1 = reg.register("dev-a", "forecast", weights, META, created=1000.0)
        v2 = reg.register("dev-b", "forecast", weights, {**META, "readings": 70})
        v3 = reg.register(
            "dev-a", "forecast", weights, {**META, "data_end": 300.0}, parent_version=v1
        )
        assert (v1, v2, v3) == (1, 2, 3)
        reg.set_cids(v3, weights_cid="bafkweights")
        reg.set_cids(v3, entry_cid="bafkentry")
    with ModelRegistry(path) as reg:  # persisted across reopen
        latest = reg.latest("dev-a")
        assert latest is not None and latest.version == 3
        assert latest.parent_version == 1
        assert (latest.data_start, latest.data_end) == (100.0, 300.0)
        assert latest.metrics == {"test_mae": 0.5}
        assert (latest.weights_cid, latest.entry_cid) == ("bafkweights", "bafkentry")
        for name, arr in weights.items():
            assert np.array_equal(latest.weights[name], arr)
        first = reg.get(1)
        assert first.created == 1000.0 and first.readings == 50 and first.weights_cid is None
        assert [v.version for v in reg.versions("dev-a")] == [1, 3]
        assert [v.version for v in reg.versions()] == [1, 2, 3]
        assert reg.latest("dev-c") is None
        with pytest.raises(KeyError, match="99"):
            reg.get(99)
        with pytest.raises(KeyError, match="99"):
            reg.set_cids(99, weights_cid="x")


def test_lives_beside_other_tables_and_refuses_newer_schema(tmp_path) -> None:
    path = tmp_path / "shared.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE readings (x INTEGER)")
    db.commit()
    ModelRegistry(path).close()
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"readings", "learning_schema", "model_versions"} <= tables
    db.execute("UPDATE learning_schema SET version = 99 WHERE component = 'registry'")
    db.commit()
    db.close()
    with pytest.raises(RegistryError, match="schema 99"):
        ModelRegistry(path)


def test_unusable_path_is_a_registry_error(tmp_path) -> None:
    with pytest.raises(RegistryError, match="missing-dir"):
        ModelRegistry(tmp_path / "missing-dir" / "db.sqlite3")
