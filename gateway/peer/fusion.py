"""Fusion strategies: pure numpy functions over lists of (weights, weight factor).

Each takes ``items = [(weights, factor), ...]`` where ``factor`` is the
sample count already discounted by staleness, and returns new weights. The
first item is by convention the local model. Robust strategies ignore or
bound the factors where an attacker could inflate them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

Weights = dict[str, np.ndarray]
Items = Sequence[tuple[Weights, float]]


def _names(items: Items) -> list[str]:
    if not items:
        raise ValueError("fusion needs at least one model")
    return list(items[0][0])


def _stack(items: Items, name: str) -> np.ndarray:
    return np.stack([np.asarray(w[name], dtype=np.float32) for w, _ in items])


def weighted_mean(items: Items) -> Weights:
    """Sample-weighted mean (FedAvg). Not robust: one bad model moves the result."""
    factors = np.asarray([max(float(f), 0.0) for _, f in items], dtype=np.float64)
    if factors.sum() <= 0:
        factors = np.ones_like(factors)
    factors = factors / factors.sum()
    out: Weights = {}
    for name in _names(items):
        stacked = _stack(items, name)
        out[name] = np.tensordot(factors, stacked, axes=1).astype(np.float32)
    return out


def coordinate_median(items: Items) -> Weights:
    """Per-coordinate median (unweighted: claimed sample counts are not trusted)."""
    return {
        name: np.median(_stack(items, name), axis=0).astype(np.float32) for name in _names(items)
    }


def trimmed_mean(items: Items, trim: float = 0.2) -> Weights:
    """Per-coordinate mean after dropping the ``trim`` fraction at each end (at least one
    each side when there are three or more models)."""
    n = len(items)
    k = int(np.floor(trim * n))
    if n >= 3:
        k = max(k, 1)
    k = min(k, (n - 1) // 2)
    out: Weights = {}
    for name in _names(items):
        stacked = np.sort(_stack(items, name), axis=0)
        out[name] = stacked[k : n - k].mean(axis=0).astype(np.float32)
    return out


def _flat(weights: Weights, names: list[str]) -> np.ndarray:
    return np.concatenate([np.asarray(weights[n], dtype=np.float32).ravel() for n in names])


def krum(items: Items, f: int = 1, m: int | None = None) -> Weights:
    """Multi-Krum: score each model by the summed squared distance to its ``n - f - 2``
    nearest neighbours, average the ``m`` best (default ``n - f``) by their factors.

    With too few models for the score (n <= f + 2) it falls back to the median.
    """
    n = len(items)
    if n <= f + 2:
        return coordinate_median(items)
    names = _names(items)
    flat = np.stack([_flat(w, names) for w, _ in items]).astype(np.float64)
    sq = np.sum(flat**2, axis=1)
    dist = sq[:, None] + sq[None, :] - 2 * flat @ flat.T
    np.fill_diagonal(dist, np.inf)
    closest = n - f - 2
    scores = np.sort(dist, axis=1)[:, :closest].sum(axis=1)
    keep = np.argsort(scores, kind="stable")[: (m if m is not None else n - f)]
    return weighted_mean([items[i] for i in sorted(keep)])


STRATEGIES: dict[str, Callable[[Items], Weights]] = {
    "mean": weighted_mean,
    "median": coordinate_median,
    "trimmed_mean": trimmed_mean,
    "krum": krum,
}


def staleness_discount(staleness: float, half_life: float) -> float:
    """Factor for a model ``staleness`` rounds older than ours: halves every ``half_life``."""
    if half_life <= 0:
        return 1.0
    return float(0.5 ** (max(staleness, 0.0) / half_life))
