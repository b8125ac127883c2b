"""What the commands print: one JSON object as the last stdout line, or ``key: value`` lines."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["print_result"]


def print_result(result: Mapping[str, Any], as_json: bool) -> None:
    """``--json``: the result as one JSON line (the contract scripts read); else a line
    per key."""
    if as_json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
