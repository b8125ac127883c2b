"""Irregular readings onto a regular grid, with a tolerance, so that they train and are scored.

Boards sample with jitter, drop readings and some sources (CSV exports, other loggers) are
irregular by nature. Assigning each reading to its nearest slot leaves empty slots wherever
two readings fall into one slot and none into the next, and an empty slot breaks every window
that spans it: such series never yield enough gap-free windows (``too_few_windows``) and most
of their readings are never scored. Here an empty slot is filled by linear interpolation
between the readings around it when they are at most ``max_fill`` slots apart; longer gaps
stay gaps (NaN). The grid is anchored at whole multiples of ``period_s`` since the epoch, so
the same instant always falls into the same slot, on every call and in every process
(or at ``origin`` plus multiples, e.g. the first reading's time, so slots are reading times).
"""

from __future__ import annotations

import numpy as np


def slot_of(ts: np.ndarray | float, period_s: float, origin: float = 0.0) -> np.ndarray:
    """Index of the nearest grid slot of each time (the grid is ``origin + k * period_s``)."""
    return np.rint((np.asarray(ts, np.float64) - origin) / period_s).astype(np.int64)


def regularize(
    ts: np.ndarray, values: np.ndarray, period_s: float, max_fill: int = 2,
    origin: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """(slot times [S], values [S, C]): mean of the readings per slot, short gaps interpolated.

    ``ts`` need not be sorted; non-finite times are dropped; NaN values are missing values.
    A slot that no reading falls into is interpolated per channel from the nearest filled
    slots on both sides when they are at most ``max_fill + 1`` slots apart (``max_fill``
    empty slots between them); otherwise it stays NaN. The grid is ``origin + k * period_s``:
    a series replayed or scored in pieces keeps one origin so its slots line up.
    """
    if not period_s > 0:
        raise ValueError(f"period_s must be > 0, got {period_s!r}")
    if max_fill < 0:
        raise ValueError(f"max_fill must be >= 0, got {max_fill!r}")
    ts = np.asarray(ts, np.float64)
    values = np.asarray(values, np.float64)
    if values.ndim == 1:
        values = values[:, None]
    keep = np.isfinite(ts)
    ts, values = ts[keep], values[keep]
    channels = values.shape[1] if values.ndim == 2 else 0
    if ts.shape[0] == 0:
        return np.zeros(0), np.zeros((0, channels))
    slot = slot_of(ts, period_s, origin)
    first = int(slot.min())
    rel = slot - first
    n_slots = int(rel.max()) + 1
    out = np.full((n_slots, channels), np.nan)
    for c in range(channels):
        ok = np.isfinite(values[:, c])
        count = np.bincount(rel[ok], minlength=n_slots)
        total = np.bincount(rel[ok], weights=values[ok, c], minlength=n_slots)
        filled = count > 0
        out[filled, c] = total[filled] / count[filled]
        if max_fill and filled.any():
            _fill_short_gaps(out[:, c], filled, max_fill)
    return origin + (first + np.arange(n_slots)) * period_s, out


def _fill_short_gaps(col: np.ndarray, filled: np.ndarray, max_fill: int) -> None:
    idx = np.flatnonzero(filled)
    if idx.shape[0] < 2:
        return
    left, right = idx[:-1], idx[1:]
    short = (right - left > 1) & (right - left <= max_fill + 1)
    for a, b in zip(left[short].tolist(), right[short].tolist(), strict=True):
        frac = np.arange(1, b - a) / (b - a)
        col[a + 1 : b] = col[a] + frac * (col[b] - col[a])


def regular_series(ts: np.ndarray, values: np.ndarray, period_s: float, max_fill: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``regularize`` from the first reading's time, for training; data whose shapes do not
    agree is passed through untouched so that the dataset names the defect (bad_shape)."""
    ts = np.asarray(ts, np.float64)
    values = np.asarray(values, np.float64)
    if (ts.ndim != 1 or values.ndim != 2 or values.shape[0] != ts.shape[0]
            or not np.isfinite(ts).any() or values.shape[1] == 0):
        return ts, values
    return regularize(ts, values, period_s, max_fill, float(np.nanmin(ts[np.isfinite(ts)])))
