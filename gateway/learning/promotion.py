"""The promotion guard: a new version becomes current only if it is worth deploying.

Judged on the same recent held-out windows of the device's series: the newest
``test_fraction`` of its gap-free windows, and of those only the ones newer than the
current version's data when there are enough (so the current version is not judged on
readings it trained on). The candidate must beat persistence (strictly) and be no worse
than the current version, step 1, MAE in the candidate's standardized units. Otherwise it
is registered as rejected with these figures and the reason; the current version stays
(served, pushed to boards, used for scoring).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import numpy as np
from prometheus_client import CollectorRegistry, Counter

from gateway.errors import SkipTraining
from gateway.learning.forecast import ForecastModel, forecast_dataset_of

MIN_JUDGED_WINDOWS = 8
WORSE_THAN_PERSISTENCE = "worse_than_persistence"
WORSE_THAN_CURRENT = "worse_than_current"
TOO_FEW_WINDOWS = "too_few_held_out_windows"


@dataclass(frozen=True)
class Decision:
    promoted: bool
    code: str  # "promoted" or one of the reasons above
    reason: str  # a sentence with the figures
    figures: dict[str, float] = field(default_factory=dict)


def _mae(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(pred, np.float64) - np.asarray(y, np.float64))))


def judge(
    candidate: ForecastModel,
    current: ForecastModel | None,
    ts: np.ndarray,
    values: np.ndarray,
    *,
    test_fraction: float = 0.2,
    current_version: int | None = None,
) -> Decision:
    """Decide whether ``candidate`` replaces ``current`` (see the module doc)."""
    try:
        ds = forecast_dataset_of(candidate, ts, values, horizon=1)
    except SkipTraining as exc:
        return Decision(False, TOO_FEW_WINDOWS, f"no held-out windows: {exc.detail}")
    n = ds.x.shape[0]
    rows = np.arange(n - max(round(n * test_fraction), 1), n) if n else np.zeros(0, int)
    if current is not None and current.data_end:
        newer = rows[ds.t[rows] > current.data_end]
        if newer.shape[0] >= MIN_JUDGED_WINDOWS:
            rows = newer
    cur_pred = None
    comparable = current is not None and current.channels == candidate.channels
    if comparable:
        assert current is not None
        try:
            cds = forecast_dataset_of(current, ts, values, horizon=1)
        except SkipTraining:
            comparable = False
        else:
            index = {float(t): i for i, t in enumerate(cds.t)}
            both = np.asarray([r for r in rows if float(ds.t[r]) in index], np.int64)
            if both.shape[0] >= MIN_JUDGED_WINDOWS:
                rows = both
                idx = np.asarray([index[float(ds.t[r])] for r in rows], np.int64)
                raw = current.scaler.inverse(current.predict_next_std(cds.x[idx], cds.t[idx]))
                cur_pred = candidate.scaler.transform(raw)
    if rows.shape[0] < MIN_JUDGED_WINDOWS:
        return Decision(False, TOO_FEW_WINDOWS,
                        f"{rows.shape[0]} held-out windows, the guard needs {MIN_JUDGED_WINDOWS}")
    y = ds.y1[rows]
    figures = {
        "windows": float(rows.shape[0]),
        "mae": _mae(candidate.predict_next_std(ds.x[rows], ds.t[rows]), y),
        "persistence_mae": _mae(ds.last_inputs[rows], y),
    }
    if cur_pred is not None:
        figures["current_mae"] = _mae(cur_pred, y)
        if current_version is not None:
            figures["current_version"] = float(current_version)
    if not figures["mae"] < figures["persistence_mae"]:
        return Decision(False, WORSE_THAN_PERSISTENCE,
                        f"held-out MAE {figures['mae']:.4f} is not below persistence's "
                        f"{figures['persistence_mae']:.4f} on {rows.shape[0]} recent windows",
                        figures)
    if "current_mae" in figures and figures["mae"] > figures["current_mae"]:
        which = f"version {current_version}" if current_version is not None else "current"
        return Decision(False, WORSE_THAN_CURRENT,
                        f"held-out MAE {figures['mae']:.4f} is above the current {which}'s "
                        f"{figures['current_mae']:.4f} on {rows.shape[0]} recent windows",
                        figures)
    return Decision(True, "promoted",
                    f"held-out MAE {figures['mae']:.4f} vs persistence "
                    f"{figures['persistence_mae']:.4f}", figures)


_COUNTERS: weakref.WeakKeyDictionary[CollectorRegistry, Counter] = weakref.WeakKeyDictionary()


def promotion_counter(registry: CollectorRegistry) -> Counter:
    """``learnae_model_promotions{result}``: promoted, or the rejection reason."""
    key = registry
    if key not in _COUNTERS:
        _COUNTERS[key] = Counter(
            "learnae_model_promotions",
            "New model versions by promotion result (promoted or the rejection reason)",
            ["result"],
            registry=registry,
        )
    return _COUNTERS[key]
