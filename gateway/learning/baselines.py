"""The yardsticks every forecaster version is judged against, on the same held-out windows.

- persistence: every future step equals the last reading of the window;
- seasonal naive: the same slot one day earlier (only when the period divides a day;
  where that slot is empty the persistence value stands in, and the share of windows
  that had a day-earlier value is reported as ``coverage``);
- ridge: a closed-form ridge regression (numpy) from the forecaster's own inputs to the
  change from the last reading, its regularisation picked on a validation split.

All figures are in standardized units (each channel divided by its spread), averaged over
channels, per horizon step (``h1``, ``h2``, ...), so channels in different units weigh the
same and figures of different devices compare.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RIDGE_LAMBDAS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)


@dataclass(frozen=True)
class Ridge:
    coef: np.ndarray  # float64 [F, O]
    intercept: np.ndarray  # float64 [O]
    lam: float

    def predict(self, features: np.ndarray) -> np.ndarray:
        out: np.ndarray = np.asarray(features, np.float64) @ self.coef + self.intercept
        return out


def fit_ridge(features: np.ndarray, target: np.ndarray, lam: float) -> Ridge:
    """Closed-form ridge on centred data (the intercept is not penalised)."""
    f = np.asarray(features, np.float64)
    t = np.asarray(target, np.float64)
    fm, tm = f.mean(axis=0), t.mean(axis=0)
    fc, tc = f - fm, t - tm
    gram = fc.T @ fc
    gram[np.diag_indices_from(gram)] += lam * max(f.shape[0], 1)
    coef = np.linalg.solve(gram, fc.T @ tc)
    return Ridge(coef, tm - fm @ coef, float(lam))


def choose_ridge(
    features: np.ndarray, target: np.ndarray, validation_fraction: float = 0.2
) -> Ridge:
    """Pick lambda on the most recent ``validation_fraction`` of rows, then refit on all."""
    n = features.shape[0]
    n_val = max(1, round(n * validation_fraction)) if n >= 10 else 0
    best_lam = RIDGE_LAMBDAS[len(RIDGE_LAMBDAS) // 2]
    if n_val:
        best = np.inf
        for lam in RIDGE_LAMBDAS:
            r = fit_ridge(features[:-n_val], target[:-n_val], lam)
            err = float(np.mean((r.predict(features[-n_val:]) - target[-n_val:]) ** 2))
            if err < best:
                best, best_lam = err, lam
    return fit_ridge(features, target, best_lam)


def errors(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    diff = np.asarray(pred, np.float64) - np.asarray(y, np.float64)
    return {"mae": float(np.mean(np.abs(diff))), "mse": float(np.mean(diff * diff))}


def per_step(pred: np.ndarray, y: np.ndarray, channels: int) -> dict[str, dict[str, float]]:
    """``{"h1": {"mae", "mse"}, ...}`` of step-major predictions [N, H*C]."""
    steps = y.shape[1] // channels
    return {
        f"h{h + 1}": errors(
            pred[:, h * channels : (h + 1) * channels], y[:, h * channels : (h + 1) * channels]
        )
        for h in range(steps)
    }


def persistence(last: np.ndarray, horizon: int) -> np.ndarray:
    return np.tile(np.asarray(last, np.float64), (1, horizon))


def seasonal_naive(
    seasonal: np.ndarray | None, last: np.ndarray, horizon: int
) -> tuple[np.ndarray | None, float]:
    """(predictions, coverage) or (None, 0) when the period does not divide a day."""
    if seasonal is None:
        return None, 0.0
    s = np.asarray(seasonal, np.float64)
    have = np.isfinite(s)
    return np.where(have, s, persistence(last, horizon)), float(have.mean()) if s.size else 0.0


def baseline_table(
    *,
    y: np.ndarray,
    last: np.ndarray,
    seasonal: np.ndarray | None,
    channels: int,
    predictions: dict[str, np.ndarray],
) -> dict[str, object]:
    """Per step: every method in ``predictions`` plus persistence and seasonal naive."""
    horizon = y.shape[1] // channels
    methods: dict[str, dict[str, dict[str, float]] | None] = {
        name: per_step(p, y, channels) for name, p in predictions.items()
    }
    methods["persistence"] = per_step(persistence(last, horizon), y, channels)
    sn, coverage = seasonal_naive(seasonal, last, horizon)
    methods["seasonal_naive"] = None if sn is None else per_step(sn, y, channels)
    steps: dict[str, dict[str, dict[str, float] | None]] = {}
    for h in range(horizon):
        key = f"h{h + 1}"
        steps[key] = {m: (None if table is None else table[key]) for m, table in methods.items()}
    return {"windows": int(y.shape[0]), "seasonal_coverage": round(coverage, 4), "steps": steps}
