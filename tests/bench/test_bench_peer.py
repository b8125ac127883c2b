"""``learnae-gateway bench peer --json`` on three kubo daemons (a few rounds only).

kubo behaviour relied on: ``stats/bw`` counts libp2p bytes in and out since the daemon
started; ``repo/stat`` reports the repository size; ``pin/ls`` lists recursive pins.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from ipfs_rig import kubo_missing_reason

pytestmark = [pytest.mark.ipfs, pytest.mark.timeout(180)]
REPO = Path(__file__).resolve().parents[2]


def test_bench_peer_reports_latency_bytes_and_disk() -> None:
    reason = kubo_missing_reason()
    if reason:
        pytest.skip(reason)
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "bench", "peer", "--json", "--rounds", "4",
         "--round-interval", "0.2", "--gc-interval", "0.5"],
        cwd=REPO, capture_output=True, text=True, timeout=150)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert "3 kubo 0.43.1 daemons" in done.stderr
    assert result["rounds"] == 4 and result["round_interval_s"] == 0.2
    assert result["failed_rounds"] == 0
    assert 0 < result["fused_fraction"] <= 1
    assert 0 < result["publish_to_fusion_p50_s"] <= result["publish_to_fusion_p99_s"] < 30
    assert result["bytes_per_peer_round"] > 1000  # weights are ~2 KB and travel through kubo
    assert result["repo_bytes_after_50_rounds"] is None  # fewer than 50 rounds
    assert result["goal_repo_within_2x_of_50_rounds"] is None
    assert result["repo_bytes_end"] == max(result["repo_bytes_end_per_node"]) > 0
    # own 4 rounds (entry + weights) and at most the heads in use of the 2 others
    assert all(8 <= n <= 12 for n in result["pinned_blocks_end_per_node"])
    assert all(n >= 1 for n in result["gc_runs_per_node"])
