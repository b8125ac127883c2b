"""``bench ledger --json`` with small parameters: the figures exist and are plausible."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from evm_rig import REPO, rig_missing_reason

pytestmark = pytest.mark.evm


@pytest.mark.timeout(180)
def test_bench_ledger_json() -> None:
    reason = rig_missing_reason()
    if reason:
        pytest.skip(reason)
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "bench", "ledger", "--json",
         "--announcements", "3", "--samples", "2"],
        cwd=REPO, capture_output=True, text=True, timeout=170,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["announcements"] == 3 and result["samples"] == 2
    assert result["announcements_per_s"] > 0
    assert 25_000 < result["gas_per_announcement"] < 80_000
    discovery = result["discovery_p50_s"]
    assert set(discovery) == {"ledger", "pubsub", "udp"}
    assert discovery["pubsub"] is None  # no kubo endpoints given
    assert 0 < discovery["udp"] < 30 and 0 < discovery["ledger"] < 30
    assert "ledger discovery" in done.stderr
