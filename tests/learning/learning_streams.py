"""Simulated sensor streams for the learning tests (a physical sensor cannot exist here)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CHANNELS = ["temp", "hum", "gas"]


@dataclass(frozen=True)
class Stream:
    ts: np.ndarray
    values: np.ndarray
    channels: list[str]
    anomalies: np.ndarray  # row indices of injected anomalies (empty if none)


def sensor_stream(
    n: int = 4000,
    *,
    period_s: float = 60.0,
    seed: int = 0,
    n_anomalies: int = 0,
    anomaly_from: float = 0.8,
    drop_fraction: float = 0.01,
) -> Stream:
    """A board sampling every ``period_s`` with jitter: daily cycles, slow drift, noise,
    dropped readings (NaN rows) and spikes injected in the last ``1 - anomaly_from``."""
    rng = np.random.default_rng(seed)
    k = np.arange(n)
    ts = 1.7e9 + k * period_s + rng.uniform(-0.1, 0.1, n) * period_s
    day = 2 * np.pi * k * period_s / 86400.0
    fast = 2 * np.pi * k / 90.0  # a ventilation cycle: predictable, not persistent
    temp = 21 + 4 * np.sin(day) + 0.8 * np.sin(fast) + rng.normal(0, 0.05, n)
    hum = 55 - 10 * np.sin(day) + 2.0 * np.cos(fast) + rng.normal(0, 0.2, n)
    gas = 400 + 30 * np.sin(day + 1) + 15 * np.sin(fast + 0.5) + rng.normal(0, 1.0, n)
    values = np.stack([temp, hum, gas], axis=1)
    dropped = rng.random(n) < drop_fraction
    values[dropped] = np.nan
    anomalies = np.zeros(0, dtype=np.int64)
    if n_anomalies:
        lo = int(n * anomaly_from)
        candidates = np.flatnonzero(~dropped[lo:]) + lo
        spaced = candidates[:: max(len(candidates) // n_anomalies, 1)][:n_anomalies]
        anomalies = np.sort(spaced)
        for j, row in enumerate(anomalies):
            channel = j % 3
            sign = 1 if j % 2 else -1
            scale = (0.8, 2.5, 15.0)[channel]
            values[row, channel] += sign * scale
    return Stream(ts, values, list(CHANNELS), anomalies)
