"""Deep sleep without a flash spool: batches that cannot survive a sleep are counted."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from tests.firmware.conftest import run_sim, write_config


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_deep_sleep_without_spool_counts_the_batches_it_loses(tmp_path: Path) -> None:
    # nobody listens: every complete batch waits in RAM, and RAM does not
    # survive a deep sleep when spool_segments = 0
    write_config(tmp_path, _closed_port(), "ds", power_mode="deep_sleep", period_ms=1,
                 batch_size=4, buffer={"spool_segments": 0})
    code, out = run_sim(tmp_path, 8)
    assert code == 0, out
    summary = json.loads(out.strip().splitlines()[-1])
    # both batches of 4 were lost in a sleep, and the count survived the wakes
    assert summary["drops"] == 8, out
    assert not list(tmp_path.glob("spool_*.bin"))
