"""A user's history as a series: a CSV with a timestamp column and numeric channels.

Format: a header row; the timestamp column (the first unless ``time_column`` names another)
holds ISO 8601 times (``2004-03-10T18:00:00``, ``2004-03-10 18:00``, with an optional ``Z`` or
offset; naive times are UTC) or unix seconds; every other column is a channel. An empty or
non-numeric cell is a gap (NaN). What cannot be used is refused with ``CsvError`` naming
the file, the column or the line: no header, a missing time column, a time that does not
parse, a channel with no number at all, or no channel.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gateway.data.cells import number, parse_time
from gateway.errors import CsvError


@dataclass(frozen=True)
class CsvSeries:
    ts: np.ndarray  # float64 [n] unix seconds, in file order
    values: np.ndarray  # float64 [n, C], NaN for gaps
    channels: list[str]
    lines: np.ndarray  # int64 [n] line number of each row in the file (header = 1)


def read_csv_series(path: str | Path, time_column: str | None = None) -> CsvSeries:
    path = Path(path)
    name = str(path)
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise CsvError(f"{name}: cannot be read: {exc.strerror}") from exc
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise CsvError(f"{name}: is empty (no header row)") from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise CsvError(f"{name} line 1: not readable as CSV: {exc}") from exc
        header = [h.strip() for h in header]
        if time_column is None:
            t_col = 0
        elif time_column in header:
            t_col = header.index(time_column)
        else:
            raise CsvError(f"{name}: no time column {time_column!r} (columns: {header})")
        channels = [h for i, h in enumerate(header) if i != t_col]
        if not channels:
            raise CsvError(f"{name}: no channel column besides the time column "
                           f"{header[t_col]!r}")
        for i, h in enumerate(channels):
            if not h:
                raise CsvError(f"{name} line 1: channel column {i + 2} has no name")
        if len(set(channels)) != len(channels):
            raise CsvError(f"{name} line 1: duplicate channel names in {channels}")
        cols = [i for i in range(len(header)) if i != t_col]
        ts: list[float] = []
        rows: list[list[float]] = []
        lines: list[int] = []
        try:
            for row in reader:
                line = reader.line_num
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) > len(header):
                    raise CsvError(f"{name} line {line}: {len(row)} cells, the header has "
                                   f"{len(header)}")
                try:
                    ts.append(parse_time(row[t_col]))
                except (ValueError, IndexError, OverflowError):
                    cell = row[t_col] if t_col < len(row) else ""
                    raise CsvError(f"{name} line {line}: time {cell!r} in column "
                                   f"{header[t_col]!r} is neither ISO 8601 nor unix "
                                   "seconds") from None
                rows.append([number(row[i]) if i < len(row) else math.nan for i in cols])
                lines.append(line)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise CsvError(f"{name} line {reader.line_num}: not readable as CSV: {exc}") from exc
    if not ts:
        raise CsvError(f"{name}: has a header but no data rows")
    values = np.asarray(rows, np.float64).reshape(len(rows), len(channels))
    for j, ch in enumerate(channels):
        if np.isnan(values[:, j]).all():
            raise CsvError(f"{name}: column {ch!r} has no numeric value in {len(rows)} rows")
    return CsvSeries(np.asarray(ts, np.float64), values, channels, np.asarray(lines, np.int64))
