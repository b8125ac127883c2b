"""Loader for the bundled UCI AirQuality recording (hourly, 2004-03-10 .. 2005-04-04).

Returns plain numpy arrays in the same shape the store's ``read_series`` gives, so the
recording can stand in for a device anywhere: ``ts`` float64 unix seconds, ``values``
float64 [n, C] with the file's ``-200`` missing marker turned into NaN, and channel names.
The file carries no time zone; times are read as UTC.
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from importlib import resources

import numpy as np

MISSING = -200.0
# What the boards' sensors resemble: metal-oxide responses, temperature and humidity.
SENSOR_CHANNELS = (
    "PT08.S1(CO)",
    "PT08.S2(NMHC)",
    "PT08.S3(NOx)",
    "PT08.S4(NO2)",
    "PT08.S5(O3)",
    "T",
    "RH",
    "AH",
)


@dataclass(frozen=True)
class Recording:
    ts: np.ndarray  # float64 [n] unix seconds
    values: np.ndarray  # float64 [n, C], NaN where the file has -200
    channels: list[str]

    def slice(self, start: int, stop: int) -> Recording:
        """Rows ``start:stop`` (e.g. a different stretch of the year per gateway)."""
        return Recording(self.ts[start:stop], self.values[start:stop], list(self.channels))


def load_airquality(channels: tuple[str, ...] | list[str] | None = SENSOR_CHANNELS) -> Recording:
    """The recording with ``channels`` (all numeric columns when None), in file order."""
    raw = resources.files("gateway.data").joinpath("airquality.csv.gz").read_bytes()
    with io.TextIOWrapper(gzip.GzipFile(fileobj=io.BytesIO(raw)), encoding="utf-8") as text:
        reader = csv.reader(text)
        header = next(reader)
        rows = [row for row in reader if row and row[0]]
    numeric = header[2:]
    wanted = list(numeric if channels is None else channels)
    unknown = [c for c in wanted if c not in numeric]
    if unknown:
        raise KeyError(f"unknown AirQuality channels {unknown} (known: {numeric})")
    cols = [header.index(c) for c in wanted]
    stamps = np.array([f"{r[0]}T{r[1]}" for r in rows], dtype="datetime64[s]")
    ts = stamps.astype(np.int64).astype(np.float64)
    values = np.array([[float(r[i]) for i in cols] for r in rows], dtype=np.float64)
    values[values == MISSING] = np.nan
    return Recording(ts, values, wanted)
