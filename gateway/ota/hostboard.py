"""A board under the MicroPython unix port that can be killed and restarts (OTA tests, bench).

It runs like ``learnae-gateway sim`` (deep sleep, reset and revalidation
restart the firmware in the same state directory, which stands for flash), and
also restarts after a crash, as a board's ``main.py`` resets after an error.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from gateway import micropython_host
from gateway.commands.sim import EXIT_DEEPSLEEP, HOST_SHIMS


class Board:
    def __init__(self, state_dir: Path, *, heap: str = "256k", build: Path | None = None,
                 restart_on_crash: bool = True) -> None:
        self.state_dir = state_dir
        self.heap = heap
        self.build = build
        self.restart_on_crash = restart_on_crash
        self.proc: Any = None
        self.exits: list[int] = []
        self.starts = 0
        self._stop = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> Board:
        self._thread.start()
        return self

    def _spawn(self, wake: bool) -> Any:
        env = dict(os.environ)
        env.pop("LEARNAE_WAKE", None)
        if wake:
            env["LEARNAE_WAKE"] = "deepsleep"
        log = (self.state_dir / "stdout.txt").open("a")
        if self.build is not None:
            build = Path(os.path.relpath(self.build.resolve(), self.state_dir.resolve()))
            host = build / "host"
            return micropython_host.spawn("-m main", heap=self.heap, extra_path=[host],
                                          build_dir=build, env=env, cwd=self.state_dir,
                                          stdout=log, stderr=log)
        return micropython_host.spawn(micropython_host.FIRMWARE_DIR / "main.py", heap=self.heap,
                                      extra_path=[HOST_SHIMS], env=env, cwd=self.state_dir,
                                      stdout=log, stderr=log)

    def _loop(self) -> None:
        wake = False
        while True:
            with self._lock:
                if self._stop:
                    return
                self.proc = self._spawn(wake)
                self.starts += 1
            code = self.proc.wait()
            self.exits.append(code)
            wake = code == EXIT_DEEPSLEEP
            if code == 1 and self.restart_on_crash:
                time.sleep(0.2)  # a board pauses before its reset after an error
            elif code not in (EXIT_DEEPSLEEP, 4, 5, -9):
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
