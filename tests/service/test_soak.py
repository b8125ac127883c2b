"""``bench soak``: three minutes of load with a broker restart and a gateway SIGKILL.

The full setting of ``gateway.bench.soak`` (50 boards at 1 Hz from a publisher
process, 4 firmware processes under MicroPython, two peer gateways over UDP, API
clients polling) for 3 minutes: every reading the broker acknowledged is stored,
none twice.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .support import REPO

pytestmark = pytest.mark.slow

MINUTES = 3


def test_a_three_minute_soak_loses_and_duplicates_nothing() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "bench", "soak", "--minutes", str(MINUTES), "--json"],
        capture_output=True, text=True, cwd=REPO, timeout=MINUTES * 60 + 600)
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    # at 1 Hz from 50 boards; the publisher never stops for the faults
    assert report["sent"] >= 0.95 * 50 * MINUTES * 60, report
    assert report["lost"] == 0, report
    assert report["duplicated"] == 0, report
    assert report["stored"] == report["sent"], report
    assert report["rounds"] >= 1, report  # peering went on through the faults
    assert report["api_requests"] > 0 and report["api_p99_ms"] > 0, report
    for key in ("rss_growth_mb", "fds_start", "fds_end", "p99_publish_to_commit_ms"):
        assert isinstance(report[key], int | float), (key, report)
