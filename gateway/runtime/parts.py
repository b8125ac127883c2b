"""What the service runs: a ``Part`` starts and stops; a ``PeriodicPart`` runs one pass at
a fixed interval on a daemon thread.

A pass that raises is logged and the next one runs on time: a part of the
service (anomaly scoring, Home Assistant state) must not stop for one bad pass.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

__all__ = ["Part", "PeriodicPart"]


class Part(Protocol):
    """What the service needs from each thing it runs (``request_stop`` is optional)."""

    def start(self) -> None: ...

    def stop(self, timeout: float = 5.0) -> None: ...


class PeriodicPart:
    """Subclasses set ``thread_name`` and implement ``run_pass`` and ``interval_s``."""

    thread_name = "periodic"

    def __init__(self, log: logging.Logger) -> None:
        self._log = log
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_pass(self) -> object:
        raise NotImplementedError

    def interval_s(self) -> float:
        raise NotImplementedError

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        self._stop.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_pass()
            except Exception:
                self._log.exception("%s pass failed; retrying", self.thread_name)
            self._stop.wait(self.interval_s())
