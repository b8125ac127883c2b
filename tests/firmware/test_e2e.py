"""The firmware under the MicroPython unix port, through a real Mosquitto."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.firmware.conftest import BOARD_PROFILES, run_sim, write_config


def test_publishes_exactly_n_readings(broker, prefix, tmp_path: Path, collector_factory) -> None:
    collector = collector_factory(broker.port, prefix)
    write_config(tmp_path, broker.port, prefix)
    code, out = run_sim(tmp_path, 1000)
    assert code == 0, out
    collector.wait_for(1000)
    assert sorted(collector.keys) == [("dev1", 1, s) for s in range(1000)]
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["made"] == summary["acked"] == 1000
    assert summary["drops"] == 0
    assert all(b.channels == ["temp", "hum"] and b.period_ms == 0 for b in collector.batches)
    status = collector.wait_status(lambda d: d["state"] == "offline")
    assert status["acked"] == 1000 and status["boot"] == 1


def test_reboot_moves_boot_counter_and_keys_never_collide(broker, prefix, tmp_path: Path,
                                                          collector_factory) -> None:
    collector = collector_factory(broker.port, prefix)
    write_config(tmp_path, broker.port, prefix)
    for _ in range(2):
        code, out = run_sim(tmp_path, 200)
        assert code == 0, out
    collector.wait_for(400)
    assert len(collector.keys) == len(set(collector.keys)) == 400
    assert {k[1] for k in collector.keys} == {1, 2}


@pytest.mark.parametrize("board", ["unix", *BOARD_PROFILES])
def test_deep_sleep_keeps_seq_across_wakes(broker, prefix, tmp_path: Path,
                                          collector_factory, board) -> None:
    """rp2: a deep sleep ends in a reset whose cause says nothing of a wake."""
    collector = collector_factory(broker.port, prefix)
    write_config(tmp_path, broker.port, prefix, power_mode="deep_sleep", period_ms=1,
                 batch_size=4)
    code, out = run_sim(tmp_path, 12, board=board)
    assert code == 0, out
    assert out.count("deepsleep 1") == 11  # 12 wakes: a sleep after all but the last
    collector.wait_for(12)
    assert sorted(collector.keys) == [("dev1", 1, s) for s in range(12)]
    assert [len(b.values) for b in collector.batches] == [4, 4, 4]


def test_real_gateway_stores_exactly_n(broker, prefix, tmp_path: Path) -> None:
    """sim CLI -> Mosquitto -> `gateway run` -> SQLite; `status --json` counts them."""
    import signal
    import subprocess
    import sys
    import time

    repo = Path(__file__).resolve().parents[2]
    toml = tmp_path / "gw.toml"
    toml.write_text(f'[gateway]\nid = "gw"\ndata_dir = "{tmp_path / "data"}"\n'
                    f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n'
                    f'topic_prefix = "{prefix}"\n'
                    '[api]\nenabled = false\n[training]\nenabled = false\n')
    log = (tmp_path / "gateway.log").open("w")  # a file: an unread pipe could fill and stall it
    gateway = subprocess.Popen([sys.executable, "-m", "gateway", "run", "--config", str(toml)],
                               cwd=repo, stdout=subprocess.DEVNULL, stderr=log)
    try:
        config = write_config(tmp_path / "cfg", broker.port, prefix, period_ms=1)
        time.sleep(1.0)
        sim = subprocess.run([sys.executable, "-m", "gateway", "sim", "--device-config",
                              str(config), "--state-dir", str(tmp_path / "flash"),
                              "--count", "500"], cwd=repo, capture_output=True, text=True,
                             timeout=60)
        assert sim.returncode == 0, sim.stderr + sim.stdout
        deadline = time.monotonic() + 20
        stored = None
        while time.monotonic() < deadline:
            status = subprocess.run([sys.executable, "-m", "gateway", "status", "--config",
                                     str(toml), "--json"], cwd=repo, capture_output=True,
                                    text=True, timeout=30)
            if status.returncode == 0:
                doc = json.loads(status.stdout.strip().splitlines()[-1])
                stored = doc["devices"].get("dev1", {}).get("stored")
                if stored == 500:
                    break
            time.sleep(0.3)
        assert stored == 500
        assert doc["devices"]["dev1"]["boots"] == 1
    finally:
        gateway.send_signal(signal.SIGTERM)
        try:
            gateway.wait(15)
        except subprocess.TimeoutExpired:
            gateway.kill()
            gateway.wait()
        log.close()


def test_replay_sends_a_stretch_of_the_airquality_year(broker, prefix, tmp_path: Path,
                                                      collector_factory) -> None:
    import csv
    import gzip
    import subprocess
    import sys

    from gateway.commands.sim import AIRQUALITY

    collector = collector_factory(broker.port, prefix)
    config = write_config(tmp_path / "cfg", broker.port, prefix, sensors=[
        {"type": "replay", "columns": ["T", "RH"], "channels": ["temp", "hum"]}])
    done = subprocess.run([sys.executable, "-m", "gateway", "sim", "--device-config",
                           str(config), "--state-dir", str(tmp_path / "flash"), "--count", "60",
                           "--replay-offset", "520", "--replay-rows", "60"],
                          cwd=Path(__file__).resolve().parents[2], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr + done.stdout
    collector.wait_for(60)
    with gzip.open(AIRQUALITY, "rt") as handle:
        rows = list(csv.DictReader(handle))[520:580]

    def hundredths(cell: str) -> float | None:
        # temp and hum default to resolution -2: int16 counts of hundredths on the wire
        x = float(cell) if cell else -200.0
        return None if x == -200.0 else round(x * 100) / 100

    want = [[hundredths(r["T"]), hundredths(r["RH"])] for r in rows]
    got = [v for b in sorted(collector.batches, key=lambda b: b.seq) for v in b.values]
    assert got == want
    assert any(v is None for row in want for v in row)  # the stretch has missing readings
