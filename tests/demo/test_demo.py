"""``learnae-gateway demo``: a short run ends with a summary and leaves no process behind."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support import REPO

from gateway.rigs.broker import free_port


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie has exited; only its entry is left
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


@pytest.mark.slow
def test_short_demo_reports_and_stops_every_child(tmp_path: Path) -> None:
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "demo", "--duration", "45", "--gateways", "2",
         "--sensors", "1", "--port", str(port), "--dir", str(tmp_path / "demo")],
        cwd=REPO, capture_output=True, text=True, timeout=150)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"demo: dashboard: http://127.0.0.1:{port}/" in result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(summary["gateways"]) == ["site-1", "site-2"]
    for name, site in summary["gateways"].items():
        assert site["readings"] > 0, name
        assert site["devices"] == 1, name
        assert site["exit_code"] == 0, name
        assert 0 < site["rss_peak_mb"] <= site["rss_peak_with_training_mb"], name
        # models from 25.6 s of readings on (min_windows 256); the alarms against the
        # simulated sensor's injected readings: each one the gateway scored is one event.
        # Other events come from the replayed real recording's own jumps; fewer than spikes.
        alarms = site["alarms"]["total"]
        assert alarms["spikes_scored"] >= 1, (name, alarms)
        assert alarms["spikes_one_event"] == alarms["spikes_scored"], (name, alarms)
        assert alarms["events_without_spike"] <= alarms["spikes_scored"], (name, alarms)
        assert alarms["board_flags_per_injected"] <= 2.0, (name, alarms)
    assert result.stdout.splitlines()[1].split()[:3] == ["gateway", "readings", "devices"]
    pids = [int(p) for p in re.findall(r"(?:pid|pids) ([\d, ]+)", result.stderr)
            for p in p.replace(",", " ").split()]
    assert len(pids) == 1 + 2 + 2  # broker, gateways, sensors
    assert [pid for pid in pids if alive(pid)] == []
