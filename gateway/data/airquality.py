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
from pathlib import Path

import numpy as np

from gateway.errors import DataError

AIRQUALITY_CSV = Path(__file__).resolve().parent / "airquality.csv.gz"
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


def extract_airquality(dest: Path, columns: list[str], offset: int = 0, rows: int = 0,
                       source: Path = AIRQUALITY_CSV) -> int:
    """Write a stretch of the bundled AirQuality CSV (only ``columns``) to ``dest``."""
    if not source.exists():
        raise FileNotFoundError(f"bundled data {source} is missing")
    written = 0
    with gzip.open(source, "rt", newline="") as src, dest.open("w", newline="") as out:
        reader = csv.reader(src)
        header = next(reader)
        missing = [c for c in columns if c not in header]
        if missing:
            raise DataError(f"replay columns {missing!r} are not in {source.name}: {header}")
        idx = [header.index(c) for c in columns]
        writer = csv.writer(out)
        writer.writerow(columns)
        for i, row in enumerate(reader):
            if i < offset:
                continue
            if rows and written >= rows:
                break
            writer.writerow([row[k] if k < len(row) else "" for k in idx])
            written += 1
    return written
