"""Model registry: versions with metrics, data range and CIDs, in its own SQLite tables."""

from __future__ import annotations

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


def test_unusable_path_is_a_registry_error(tmp_path) -> None:
    with pytest.raises(RegistryError, match="missing-dir"):
        ModelRegistry(tmp_path / "missing-dir" / "db.sqlite3")


def test_keep_drops_the_oldest_versions_but_never_the_current_one(tmp_path) -> None:
    weights = init_weights(MLPSpec((4, 3, 2)), 0)
    with ModelRegistry(tmp_path / "gateway.sqlite3") as reg:
        current = reg.register("dev-a", "forecast", weights, META)
        other = reg.register("dev-b", "forecast", weights, META)
        rejected = [reg.register("dev-a", "forecast", weights, META, status="rejected",
                                 reason="worse", keep=3) for _ in range(6)]
        assert [v.version for v in reg.versions("dev-a")] == [current, *rejected[-3:]]
        assert [v.version for v in reg.versions("dev-b")] == [other]  # another device's stay
        assert reg.current_version("dev-a") == current == reg.current("dev-a").version
        # round numbers count the dropped versions too
        assert reg.count_up_to("dev-a", rejected[-1]) == 7
        newest = reg.register("dev-a", "forecast", weights, META, keep=3)
        assert [v.version for v in reg.versions("dev-a")] == [*rejected[-2:], newest]
        assert reg.count_up_to("dev-a", newest) == 8
        assert reg.count_newer("dev-a", rejected[-2]) == 2
        assert [v.version for v in reg.newer("dev-a", 0, limit=2)] == [rejected[-1], newest]


def test_lookups_made_on_every_pass_read_an_index_only(tmp_path) -> None:
    """A version's row holds tens of kB of metadata; the per-pass and per-request lookups
    must not read rows (the status column lies after the metadata and weights)."""
    weights = init_weights(MLPSpec((4, 3, 2)), 0)
    with ModelRegistry(tmp_path / "gateway.sqlite3") as reg:
        reg.register("dev-a", "forecast", weights, META)
        executed: list[str] = []
        reg._db.set_trace_callback(executed.append)
        lookups = {
            "current_version": lambda: reg.current_version("dev-a"),
            "latest_version": lambda: reg.latest_version("dev-a"),
            # the lookup of the number; then the one version is read by its key
            "newest_promoted(device)": lambda: reg.newest_promoted("dev-a"),
            "newest_promoted()": reg.newest_promoted,
            "count_newer": lambda: reg.count_newer("dev-a", 0),
            "device_names": reg.device_names,
        }
        for name, lookup in lookups.items():
            executed.clear()
            lookup()
            assert executed, name
            plan = " ".join(str(r[-1]) for r in
                            reg._db.execute(f"EXPLAIN QUERY PLAN {executed[0]}"))
            assert "COVERING INDEX" in plan, (name, executed[0], plan)
