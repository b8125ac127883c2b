"""Sites for the federation experiment: user CSV files, or the bundled AirQuality seasons.

A CSV has a header; one column is the time (the first unless named), ISO 8601 (a naive
time is UTC) or unix seconds; the other columns are numeric channels, where an empty
cell or a non-numeric value is a gap. A file, column or row that cannot be used is
refused with a ``SiteError`` naming the file, the column or the line.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gateway.data import cells
from gateway.data.airquality import load_airquality
from gateway.errors import SiteError

SEASONS = ("spring", "summer", "autumn", "winter")


@dataclass(frozen=True)
class Site:
    name: str
    ts: np.ndarray  # float64 [n] unix seconds, sorted
    values: np.ndarray  # float64 [n, C], NaN = gap
    channels: list[str]
    labels: np.ndarray | None = None  # float64 [n]: > 0 anomalous, 0 normal, NaN unlabelled


def parse_time(text: str) -> float | None:
    """Unix seconds of ``text`` (ISO 8601 or a number), or None."""
    try:
        return cells.parse_time(text)
    except ValueError:
        return None


def load_site_csv(name: str, path: str | Path, *, time_column: str | None = None,
                  labels: str | None = None) -> Site:
    """Read one site's CSV (see the module doc)."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as exc:
        raise SiteError(f"site {name!r}: cannot read {str(path)!r}: {exc}") from exc
    except csv.Error as exc:
        raise SiteError(f"site {name!r}: {str(path)!r} is not CSV: {exc}") from exc
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise SiteError(f"site {name!r}: {str(path)!r} has no header line")
    header = [cell.strip() for cell in rows[0]]
    if len(set(header)) != len(header):
        dup = sorted({h for h in header if header.count(h) > 1})
        raise SiteError(f"site {name!r}: {str(path)!r} repeats columns {dup}")
    tcol = header[0] if time_column is None else time_column
    if tcol not in header:
        raise SiteError(f"site {name!r}: {str(path)!r} has no time column {tcol!r} "
                        f"(columns: {', '.join(header)})")
    if labels is not None and labels not in header:
        raise SiteError(f"site {name!r}: {str(path)!r} has no labels column {labels!r} "
                        f"(columns: {', '.join(header)})")
    ti = header.index(tcol)
    li = header.index(labels) if labels is not None else None
    channels = [h for i, h in enumerate(header) if i != ti and i != li]
    cols = [header.index(c) for c in channels]
    if not channels:
        raise SiteError(f"site {name!r}: {str(path)!r} has no channel column besides {tcol!r}")
    ts, vals, labs = [], [], []
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue  # a blank line
        if len(row) != len(header):
            raise SiteError(f"site {name!r}: {str(path)!r} line {line} has {len(row)} fields, "
                            f"the header {len(header)}")
        t = parse_time(row[ti])
        if t is None:
            raise SiteError(f"site {name!r}: {str(path)!r} line {line}: time {row[ti]!r} is "
                            "neither ISO 8601 nor unix seconds")
        ts.append(t)
        vals.append([cells.number(row[i]) for i in cols])
        if li is not None:
            labs.append(cells.number(row[li]))
    if not ts:
        raise SiteError(f"site {name!r}: {str(path)!r} has no data lines")
    values = np.asarray(vals, np.float64)
    for j, c in enumerate(channels):
        if not np.isfinite(values[:, j]).any():
            raise SiteError(f"site {name!r}: {str(path)!r} column {c!r} has no numeric value")
    order = np.argsort(np.asarray(ts), kind="stable")
    label_arr = np.asarray(labs, np.float64)[order] if li is not None else None
    return Site(name, np.asarray(ts, np.float64)[order], values[order], channels, label_arr)


def airquality_seasons() -> list[Site]:
    """The bundled AirQuality year cut into four consecutive seasonal sites."""
    rec = load_airquality()
    cuts = np.linspace(0, rec.ts.shape[0], len(SEASONS) + 1).astype(int)
    return [Site(name, rec.ts[a:b], rec.values[a:b], list(rec.channels))
            for name, a, b in zip(SEASONS, cuts[:-1], cuts[1:], strict=True)]


def parse_site_argument(text: str) -> tuple[str, str]:
    """``NAME=CSV`` -> (name, path)."""
    name, sep, path = text.partition("=")
    if not sep or not name.strip() or not path.strip():
        raise SiteError(f"--site {text!r} is not NAME=CSV")
    return name.strip(), path.strip()
