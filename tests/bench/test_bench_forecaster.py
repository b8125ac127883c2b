"""``bench forecaster --json`` with small parameters: one JSON line, sane figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(180)
def test_bench_forecaster_prints_one_json_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "bench", "forecaster", "--json", "--epochs", "1",
         "--repeats", "1", "--readings", "8000"],
        cwd=ROOT, capture_output=True, text=True, timeout=170,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    per_epoch = result["per_epoch"]
    assert per_epoch["current_linear_path"] and per_epoch["current_s_per_epoch"] > 0
    assert per_epoch["current_spec"][0] == per_epoch["previous_spec"][0] + 4  # calendar
    round_ = result["federation_round"]
    assert round_["devices"] == 4 and round_["readings"] == 8000 and round_["models"] == 4
    assert round_["seconds"] > 0
