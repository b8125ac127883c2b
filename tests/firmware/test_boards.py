"""The firmware against the board profiles of the host shims (rp2, esp32).

Each profile mirrors its port's surface (edge_firmware/host/machine.py): the
machine names it has, a watchdog that resets the process when it is not fed
in time, the clock's power-on date, deep sleep as the port does it, the
socket constants of its lwIP stack, and a Wi-Fi join that may never complete.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from gateway import micropython_host
from gateway.commands.sim import EXIT_REVALIDATED, EXIT_WATCHDOG, HOST_SHIMS, install_board_file
from tests.firmware.conftest import BOARD_PROFILES, SilentServer, run_sim, write_config

WIFI_DOWN = "down: OSError: Wi-Fi 'lab' not connected after 3000 ms"


def spawn_board(state_dir: Path, board: str, count: int, **env: str):
    """Start the firmware under ``board`` (after the first run validates the
    config); the caller stops it. Output goes to ``state_dir/stdout.txt``."""
    install_board_file(state_dir, board)
    log = (state_dir / "stdout.txt").open("w")
    full = {**os.environ, **env}

    def start():
        return micropython_host.spawn(micropython_host.FIRMWARE_DIR / "main.py", "--count",
                                      str(count), heap="256k", extra_path=[HOST_SHIMS],
                                      cwd=state_dir, stdout=log, stderr=log, env=full,
                                      board=board)

    first = start()
    try:
        assert first.wait(30) == EXIT_REVALIDATED
    finally:
        if first.poll() is None:
            first.kill()
    return start()


def run_script(script: str, board: str) -> subprocess.CompletedProcess[str]:
    """A snippet under the unix port with ``board``'s host shims."""
    _, env = micropython_host.command("-m unused", extra_path=[HOST_SHIMS], board=board)
    return subprocess.run([*micropython_host.launcher(), "-c", script], env=env,
                          capture_output=True, text=True, timeout=30)


def wait_log(path: Path, proc, pred, timeout: float) -> str:
    """Poll the firmware's output until ``pred`` holds or the process ends."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text()
        if pred(text) or proc.poll() is not None:
            return text
        time.sleep(0.1)
    return path.read_text()


@pytest.mark.parametrize("board", BOARD_PROFILES)
def test_profile_mirrors_the_port(board: str) -> None:
    script = (
        "import machine, network, socket, time\n"
        "print(hasattr(machine, 'DEEPSLEEP_RESET'), socket.TCP_NODELAY, time.gmtime()[0])\n"
        "try:\n"
        "    machine.WDT(timeout=9000)\n"
        "    print('wdt ok')\n"
        "except ValueError as e:\n"
        "    print('wdt', e)\n"
        "w = network.WLAN(network.STA_IF)\n"
        "print(w.isconnected())\n"
    )
    out = run_script(script, board)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split("\n")
    if board == "rp2":
        # the RTC of the RP2040 starts at 2021-01-01; WDT capped at 8388 ms
        assert lines[:3] == ["False 64 2021", "wdt timeout exceeds 8388", "False"]
    else:
        # the ESP32's clock starts at 2000-01-01
        assert lines[:3] == ["True 1 2000", "wdt ok", "False"]


@pytest.mark.parametrize("board", BOARD_PROFILES)
def test_profile_watchdog_resets_when_not_fed(board: str) -> None:
    # (1000 ms: the ESP32's minimum)
    script = ("import machine, time\nw = machine.WDT(timeout=1000)\n"
              "for i in range(5):\n    time.sleep_ms(400)\n    w.feed()\n"
              "print('fed')\ntime.sleep_ms(5000)\nprint('still running')\n")
    out = run_script(script, board)
    assert out.returncode == EXIT_WATCHDOG
    assert "fed\nwatchdog reset: not fed for" in out.stdout
    assert "still running" not in out.stdout


@pytest.mark.parametrize("board", BOARD_PROFILES)
def test_ap_that_never_accepts_the_join_leaves_the_board_backing_off(
        board: str, broker, prefix, tmp_path: Path) -> None:
    """Scaled: watchdog 1000 ms, join 3000 ms, backoff up to 1500 ms (a Pico W:
    8388 ms, 15000 ms, 30000 ms), four failed joins, about 15 s."""
    write_config(tmp_path, broker.port, prefix, period_ms=100, watchdog_ms=1000,
                 wifi={"ssid": "lab", "timeout_ms": 3000}, mqtt={"backoff_max_ms": 1500})
    proc = spawn_board(tmp_path, board, 10**6, LEARNAE_WIFI="never")
    try:
        log = wait_log(tmp_path / "stdout.txt", proc, lambda t: t.count(WIFI_DOWN) >= 4, 90)
        assert proc.poll() is None, log
        assert "watchdog reset" not in log
        assert log.count(WIFI_DOWN) >= 4, log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


LONG_AP_S = float(os.environ.get("LEARNAE_LONG_AP_S", "0"))


@pytest.mark.skipif(not LONG_AP_S, reason="unscaled run: set LEARNAE_LONG_AP_S=600 (10 min)")
@pytest.mark.parametrize("board", BOARD_PROFILES)
@pytest.mark.timeout(0)
def test_ap_that_never_accepts_the_join_unscaled(board: str, broker, prefix,
                                                tmp_path: Path) -> None:
    """The Pico W's own figures (watchdog 8388 ms, join 15000 ms, backoff up to 30 s) for
    LEARNAE_LONG_AP_S seconds: the board keeps backing off and the watchdog never bites."""
    write_config(tmp_path, broker.port, prefix, period_ms=1000, watchdog_ms=8388,
                 wifi={"ssid": "lab"}, mqtt={"backoff_max_ms": 30000})
    proc = spawn_board(tmp_path, board, 10**6, LEARNAE_WIFI="never")
    try:
        time.sleep(LONG_AP_S)
        log = (tmp_path / "stdout.txt").read_text()
        assert proc.poll() is None, log
        assert "watchdog reset" not in log
        # a join every 15 s + backoff (at most 30 s): at least one per 45 s
        assert log.count("not connected after 15000 ms") >= LONG_AP_S // 45, log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_silent_broker_never_trips_the_watchdog(tmp_path: Path) -> None:
    """CONNACK and PUBACK waits of 3000 ms under a 1000 ms watchdog (rp2)."""
    server = SilentServer()
    write_config(tmp_path, server.port, "wd", period_ms=50, watchdog_ms=1000,
                 mqtt={"timeout_ms": 3000, "backoff_max_ms": 500})
    proc = spawn_board(tmp_path, "rp2", 10**6)
    try:
        log = wait_log(tmp_path / "stdout.txt", proc, lambda t: t.count("down:") >= 2, 60)
        assert proc.poll() is None, log
        assert "watchdog reset" not in log
        assert log.count("down: OSError") >= 2 and len(server.accepted) >= 2
    finally:
        server.stop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("board", BOARD_PROFILES)
def test_readings_without_a_clock_carry_no_time(board: str, broker, prefix, tmp_path: Path,
                                                collector_factory) -> None:
    """No NTP and no time from the gateway: t = 0, never the port's power-on date."""
    collector = collector_factory(broker.port, prefix)
    write_config(tmp_path, broker.port, prefix, batch_size=10)
    code, out = run_sim(tmp_path, 40, board=board)
    assert code == 0, out
    collector.wait_for(40)
    assert [b.t for b in collector.batches] == [0, 0, 0, 0]


@pytest.mark.parametrize("board", BOARD_PROFILES)
def test_tcp_nodelay_set_with_the_ports_constant(board: str, broker, prefix, tmp_path: Path,
                                                 collector_factory) -> None:
    collector = collector_factory(broker.port, prefix)
    write_config(tmp_path, broker.port, prefix, batch_size=10)
    code, out = run_sim(tmp_path, 20, board=board)
    assert code == 0, out
    assert "lwip.setsockopt() option not implemented" not in out
    doc = collector.wait_status(lambda d: d["state"] == "offline")
    assert doc["link"]["tcp_nodelay"] is True


@pytest.mark.parametrize("board", BOARD_PROFILES)
def test_readings_carry_the_gateways_time_once_received(board: str, broker, prefix,
                                                        tmp_path: Path, collector_factory) -> None:
    """No NTP: the gateway answers the online status with its time (gateway/clock.py),
    the board sets its RTC (2021-01-01 or 2000-01-01 at power-on) and stamps with it."""
    from gateway.clock import GatewayClock

    from gateway.config import MqttSection

    clock = GatewayClock(MqttSection(host="127.0.0.1", port=broker.port, topic_prefix=prefix),
                         client_id=f"clock-{prefix}")
    clock.start()
    try:
        collector = collector_factory(broker.port, prefix)
        write_config(tmp_path, broker.port, prefix, period_ms=50, batch_size=10)
        start = time.time()
        code, out = run_sim(tmp_path, 100, board=board)
        end = time.time()
        assert code == 0, out
        collector.wait_for(100)
        stamps = [b.t for b in sorted(collector.batches, key=lambda b: b.seq)]
        # the first batch may start before the answer arrives (t = 0: stamped on arrival)
        assert all(t == 0 or start - 2 <= t <= end + 2 for t in stamps), stamps
        assert sum(1 for t in stamps if t) >= 5, stamps  # the answer came within 2.5 s
        doc = collector.wait_status(lambda d: d["state"] == "offline")
        epoch = 1609459200 if board == "rp2" else 946684800
        # the drift the board saw: the gateway's time minus its power-on clock
        assert abs(doc["link"]["clock_drift_s"] - (start - epoch)) < 30
        assert clock.metrics.answered._value.get() >= 1
    finally:
        clock.stop()


def test_sim_starts_the_board_again_after_a_watchdog_reset(tmp_path: Path) -> None:
    """run_firmware: a bitten watchdog (SIGUSR1) is a reset, the next start sees
    WDT_RESET as its cause; every start's output goes to the same log."""
    from gateway.commands.sim import run_firmware

    build = tmp_path / "build"
    build.mkdir()
    (build / "main.py").write_text(
        "import machine, sys, time\n"
        "if machine.reset_cause() == machine.WDT_RESET:\n"
        "    print('after the reset')\n"
        "    sys.exit(0)\n"
        "w = machine.WDT(timeout=1000)\n"
        "time.sleep_ms(5000)\n"
        "print('never')\n")
    state = tmp_path / "flash"
    state.mkdir()
    with (tmp_path / "log.txt").open("w") as log:
        code = run_firmware(state, build_dir=build, board="rp2", stdout=log, stderr=log)
    text = (tmp_path / "log.txt").read_text()
    assert code == 0, text
    assert "watchdog reset: not fed for" in text and "sim: watchdog reset" in text
    assert "after the reset" in text and "never" not in text
    assert (state / "board.json").exists()  # the board's file, as flash installs it
