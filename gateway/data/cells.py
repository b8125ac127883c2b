"""Cells of the CSV files users bring (a site's readings, a history to replay)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

__all__ = ["number", "parse_time"]


def parse_time(text: str) -> float:
    """Unix seconds from unix seconds or ISO 8601 (a naive time is UTC, ``Z`` allowed);
    ValueError otherwise, a number that is not finite included."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        return stamp.timestamp()
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite time")
    return value


def number(text: str) -> float:
    """A reading's value; an empty, non-numeric or non-finite cell is a gap (NaN)."""
    try:
        value = float(text)
    except ValueError:
        return math.nan
    return value if math.isfinite(value) else math.nan
