"""The API's model answers read a bounded number of registry versions, however long the
history (a version is registered every round, so reading them all made every overview
slower and the gateway's memory grow for as long as it ran)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gateway.api.sources import RegistryModels
from gateway.learning.registry import ModelRegistry


def _history(db: Path, rounds: int) -> dict[str, Any]:
    """``rounds`` versions for each of two devices: promoted, with the last two rejected."""
    weights = {"w": np.zeros((2, 2), np.float32)}
    last: dict[str, Any] = {}
    with ModelRegistry(db) as registry:
        for r in range(rounds):
            for device in ("a", "b"):
                rejected = r >= rounds - 2
                meta = {"data_end": float(r), "promotion": {"result": "worse" if rejected
                                                            else "promoted"}}
                last.setdefault(device, []).append(registry.register(
                    device, "forecast", weights, meta,
                    status="rejected" if rejected else "promoted",
                    reason="worse" if rejected else None))
    return last


def _count_decoded(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    decoded: list[int] = []
    rows = ModelRegistry._rows

    def counting(self: ModelRegistry, where: str, params: tuple[Any, ...]) -> Any:
        out = rows(self, where, params)
        decoded.append(len(out))
        return out

    monkeypatch.setattr(ModelRegistry, "_rows", counting)
    return decoded


def test_overview_history_and_current_decode_a_bounded_number_of_versions(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "gateway.sqlite3"
    made = _history(db, 60)
    decoded = _count_decoded(monkeypatch)
    models = RegistryModels(db)

    listed = models.latest_per_device()
    assert [d["device"] for d in listed] == ["a", "b"]
    for doc in listed:
        assert doc["version"] == made[doc["device"]][-3]
        assert [r["version"] for r in doc["rejected"]] == made[doc["device"]][-2:]
    assert sum(decoded) <= 2 * 3, decoded  # each device: its current and the two since

    decoded.clear()
    current = models.current()
    assert current is not None
    assert current["version"] == max(made["a"][-3], made["b"][-3])
    assert sum(decoded) == 1, decoded

    decoded.clear()
    rounds = models.history(4)
    assert [r["version"] for r in rounds] == sorted(made["a"][-2:] + made["b"][-2:])
    assert [r["round"] for r in rounds] == [59, 59, 60, 60]
    assert sum(decoded) == 4, decoded


def test_a_long_run_of_rejected_versions_is_counted_not_decoded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A device whose trainings keep losing to its current model: the overview lists the
    newest few rejections and their count, and reads no more versions as the run grows."""
    from gateway.api.sources import REJECTED_SHOWN

    db = tmp_path / "gateway.sqlite3"
    weights = {"w": np.zeros((2, 2), np.float32)}
    with ModelRegistry(db) as registry:
        current = registry.register("a", "forecast", weights, {"promotion": {}})
        rejected = [registry.register("a", "forecast", weights,
                                      {"promotion": {"result": "worse"}},
                                      status="rejected", reason="worse") for _ in range(40)]
    decoded = _count_decoded(monkeypatch)
    [doc] = RegistryModels(db).latest_per_device()
    assert doc["version"] == current
    assert doc["rejected_count"] == 40
    assert [r["version"] for r in doc["rejected"]] == rejected[-REJECTED_SHOWN:]
    assert sum(decoded) <= 1 + REJECTED_SHOWN, decoded
