"""What the store hands out: plain dataclasses and numpy arrays, no SQLite types."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class DeviceInfo:
    """One registry entry: counters, presence and the last status document."""

    id: str
    stored: int
    boots: int
    last_seen: float | None
    online: bool
    firmware: str | None
    status: dict[str, Any] = field(default_factory=dict)
    duplicates: int = 0
    rejected: int = 0
    registered: float | None = None


@dataclass(frozen=True)
class Sample:
    """One stored reading; a missing channel value is ``None``."""

    ts: float
    boot: int
    seq: int
    values: dict[str, float | None]
    anomaly: bool


@dataclass(frozen=True)
class Series:
    """Readings as arrays: ``ts`` ascending, ``values[i, j]`` of ``channels[j]`` (NaN = missing)."""

    ts: np.ndarray
    values: np.ndarray
    channels: list[str]

    def __len__(self) -> int:
        return int(self.ts.shape[0])
