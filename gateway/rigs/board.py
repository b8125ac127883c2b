"""A board under the MicroPython unix port: the real firmware, restarted as a board restarts.

The device config is validated with the same schema the board uses, copied to
``<state-dir>/config.json`` and the firmware runs with that directory as its
working directory, so ``state.json`` (boot counter) and the flash spool live
there across runs, as they would in a board's flash. Deep sleep is a process
exit with code 3: the runner starts the firmware again with
``LEARNAE_WAKE=deepsleep`` (a wake, not a boot). Exit code 4 is a reset
(a new boot). Exit code 5 follows the validation of a new or changed config
(a board soft-resets there): the firmware starts again with the same wake
flag. A ``replay`` sensor whose CSV is absent gets a stretch of the bundled
AirQuality year.

A board profile (``rp2`` / ``esp32``, or ``LEARNAE_BOARD``) runs the firmware
against that port's profile of the host shims (edge_firmware/host/machine.py):
the board's file from ``hardware/boards`` becomes ``board.json`` (unless the
state directory has one), and a watchdog that bites ends the process with
SIGUSR1, a watchdog reset: the firmware starts again as a new boot, and
``stderr`` says so.

``run_firmware`` runs one board in the foreground (``learnae-gateway sim``);
``Board`` runs one in a thread of its own that can be killed like a power cut
and also restarts after a crash, as a board's ``main.py`` resets after an
error (OTA tests and benchmarks).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from gateway.data.airquality import extract_airquality
from gateway.firmware.build import BOARDS_DIR, FIRMWARE_DIR
from gateway.rigs import micropython
from gateway.rigs.micropython import HOST_SHIMS
from shared.config import validate_device_config

__all__ = ["EXIT_DEEPSLEEP", "EXIT_RESET", "EXIT_REVALIDATED", "EXIT_WATCHDOG", "HOST_SHIMS",
           "Board", "install_board_file", "prepare_state_dir", "run_firmware",
           "spawn_firmware"]

EXIT_DEEPSLEEP = 3
EXIT_RESET = 4
EXIT_REVALIDATED = 5  # a board soft-resets after validating a changed config
EXIT_WATCHDOG = -signal.SIGUSR1  # a board profile's watchdog bit (host/machine.py)
EXIT_CRASH = 1  # an uncaught error: a board resets after it
BOARD_FILES = {"rp2": "pico-w.json", "esp32": "esp32-devkitc.json"}


def prepare_state_dir(config_path: Path, state_dir: Path, *, replay_offset: int = 0,
                      replay_rows: int = 0) -> dict[str, Any]:
    """Validate the config, copy it (and any replay CSV) into ``state_dir``."""
    doc = json.loads(config_path.read_text())
    conf = validate_device_config(doc)
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "config.json").write_text(json.dumps(doc))
    for sensor in conf["sensors"]:
        if sensor["type"] != "replay":
            continue
        target = state_dir / sensor["path"]
        beside = config_path.parent / sensor["path"]
        if beside.exists() and beside.resolve() != target.resolve():
            shutil.copyfile(beside, target)
        elif not target.exists():
            extract_airquality(target, sensor["columns"], replay_offset, replay_rows)
    return conf


def install_board_file(state_dir: Path, board: str | None) -> None:
    """A board profile's ``board.json`` (from hardware/boards), unless one is there."""
    name = BOARD_FILES.get(board or "")
    if name and not (state_dir / "board.json").exists():
        shutil.copyfile(BOARDS_DIR / name, state_dir / "board.json")


def spawn_firmware(state_dir: Path, *, wake: bool | str = False, count: int | None = None,
                   heap: str = "256k", build_dir: Path | None = None, board: str | None = None,
                   stdout: Any = None, stderr: Any = None) -> subprocess.Popen[bytes]:
    """Start the firmware once in ``state_dir`` (``wake``: False for a boot, True for a
    deep-sleep wake, else the wake's name); the caller owns the process."""
    env = dict(os.environ)
    env.pop("LEARNAE_WAKE", None)
    if wake:
        env["LEARNAE_WAKE"] = "deepsleep" if wake is True else str(wake)
    args = ["--count", str(count)] if count is not None else []
    if build_dir is None:
        return micropython.spawn(FIRMWARE_DIR / "main.py", *args, heap=heap,
                                 extra_path=[HOST_SHIMS], env=env, cwd=state_dir,
                                 stdout=stdout, stderr=stderr, board=board)
    # paths relative to the working directory: MicroPython interns every
    # module's file name for good, and a board's are short ("agent.mpy")
    host = build_dir / "host" if (build_dir / "host").exists() else HOST_SHIMS
    build = Path(os.path.relpath(build_dir.resolve(), state_dir.resolve()))
    build_host = Path(os.path.relpath(host.resolve(), state_dir.resolve()))
    return micropython.spawn("-m main", *args, heap=heap, extra_path=[build_host],
                             build_dir=build, env=env, cwd=state_dir, stdout=stdout,
                             stderr=stderr, board=board)


def run_firmware(state_dir: Path, *, count: int | None = None, heap: str = "256k",
                 build_dir: Path | None = None, stdout: Any = None, stderr: Any = None,
                 board: str | None = None) -> int:
    """Run the firmware until it exits for good; restart it after deep sleep or reset."""
    wake: bool | str = False
    board = board or os.environ.get("LEARNAE_BOARD") or None
    install_board_file(state_dir, board)
    while True:
        proc = spawn_firmware(state_dir, wake=wake, count=count, heap=heap,
                              build_dir=build_dir, board=board, stdout=stdout, stderr=stderr)
        try:
            code = proc.wait()
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)
            proc.wait()
            return 130
        if code == EXIT_DEEPSLEEP:
            wake = True
            continue
        if code == EXIT_RESET:
            wake = "reset"
            continue
        if code == EXIT_WATCHDOG:
            log = stderr if hasattr(stderr, "write") and "b" not in getattr(
                stderr, "mode", "") else sys.stderr
            print("sim: watchdog reset", file=log, flush=True)
            wake = "watchdog"
            continue
        if code == EXIT_REVALIDATED:  # the config was validated: start again, same wake
            continue
        return code


class Board:
    """One board in a thread of its own; ``kill`` cuts its power, and it starts again.

    Its output goes to ``<state_dir>/stdout.txt``.
    """

    def __init__(self, state_dir: Path, *, heap: str = "256k", build: Path | None = None,
                 restart_on_crash: bool = True) -> None:
        self.state_dir = state_dir
        self.heap = heap
        self.build = build
        self.restart_on_crash = restart_on_crash
        self.proc: subprocess.Popen[bytes] | None = None
        self.exits: list[int] = []
        self.starts = 0
        self._stop = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> Board:
        self._thread.start()
        return self

    def _spawn(self, wake: bool) -> subprocess.Popen[bytes]:
        log: IO[str] = (self.state_dir / "stdout.txt").open("a")
        with log:  # the child holds its own copy of the descriptor
            return spawn_firmware(self.state_dir, wake=wake, heap=self.heap,
                                  build_dir=self.build, stdout=log, stderr=log)

    def _loop(self) -> None:
        wake = False
        while True:
            with self._lock:
                if self._stop:
                    return
                proc = self.proc = self._spawn(wake)
                self.starts += 1
            code = proc.wait()
            self.exits.append(code)
            wake = code == EXIT_DEEPSLEEP
            if code == EXIT_CRASH and self.restart_on_crash:
                time.sleep(0.2)  # a board pauses before its reset after an error
            elif code not in (EXIT_DEEPSLEEP, EXIT_RESET, EXIT_REVALIDATED, -signal.SIGKILL):
                return  # finished, or a config error

    def kill(self) -> None:
        """SIGKILL the running process (as a power cut); the loop starts it again."""
        with self._lock:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()

    def stop(self) -> None:
        with self._lock:
            self._stop = True
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
        self._thread.join(10)

    def log(self) -> str:
        path = self.state_dir / "stdout.txt"
        return path.read_text() if path.exists() else ""
