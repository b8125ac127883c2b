"""One spawned worker process that runs functions for the service, and can be stopped at once.

Training runs here so that a busy trainer costs the ingest process neither the GIL nor
CPU priority: the process is spawned (no inherited threads or locks), lowers its own
priority by ``nice``, and then runs the calls it is sent one at a time, keeping its
imports warm between them. ``stop`` ends it at once, whatever it is doing (training is
restartable); a call in progress then raises ``WorkerLost``, as it does when the process
dies on its own (killed, out of memory). The next call after a death starts a new process;
after ``stop``, none does.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import threading
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

from gateway.errors import WorkerLost

__all__ = ["WorkerProcess"]

log = logging.getLogger("learnae.worker")

T = TypeVar("T")


def lower_priority(increment: int) -> None:
    if increment > 0:
        try:
            os.nice(increment)
        except OSError:  # only an invalid increment fails
            log.warning("could not lower the worker's priority by %d", increment)


def _serve(conn: multiprocessing.connection.Connection, nice: int) -> None:
    """The worker's loop: (function, args) in, (True, result) or (False, exception) out."""
    lower_priority(nice)
    while True:
        try:
            fn, args = conn.recv()
        except (EOFError, OSError):  # the service closed its end: nothing more to do
            return
        try:
            answer: tuple[bool, Any] = (True, fn(*args))
        except Exception as exc:
            try:  # the exception itself, if the service can rebuild it
                pickle.loads(pickle.dumps(exc))
                answer = (False, exc)
            except Exception:
                answer = (False, RuntimeError(f"{type(exc).__name__}: {exc}"))
        conn.send(answer)


class WorkerProcess:
    """Run functions in one spawned, niced process; ``stop`` ends it at once.

    ``call`` blocks until the answer (one call at a time; other callers wait).
    Functions and their arguments cross by pickle: module-level functions and plain data.
    """

    def __init__(self, *, nice: int = 0, name: str = "learnae-worker") -> None:
        self.nice = nice
        self.name = name
        self._context = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()  # guards the process and the stopped flag
        self._calls = threading.Lock()  # one call at a time
        self._process: BaseProcess | None = None
        self._conn: multiprocessing.connection.Connection | None = None
        self._stopped = False

    @property
    def running(self) -> bool:
        """True while a worker process is alive."""
        with self._lock:
            return self._process is not None and self._process.is_alive()

    @property
    def stopped(self) -> bool:
        return self._stopped

    def _ensure(self) -> tuple[multiprocessing.connection.Connection, BaseProcess]:
        """The live process and its pipe, started if needed (``_calls`` is held)."""
        with self._lock:
            if self._stopped:
                raise WorkerLost(f"{self.name} is stopped")
            if self._process is not None and self._process.is_alive():
                assert self._conn is not None
                return self._conn, self._process
            self._forget()
            ours, theirs = self._context.Pipe()
            process = self._context.Process(target=_serve, args=(theirs, self.nice),
                                            name=self.name, daemon=True)
            process.start()
            theirs.close()
            self._process, self._conn = process, ours
            return ours, process

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in the worker; its exception is raised here. Raises WorkerLost
        when the process ends before it answers."""
        with self._calls:
            conn, process = self._ensure()
            answer: tuple[bool, Any] | None = None
            try:
                conn.send((fn, args))
                ready = multiprocessing.connection.wait([conn, process.sentinel])
                if conn in ready:
                    answer = conn.recv()
            except (EOFError, OSError, ValueError):  # the pipe broke: the process is gone
                answer = None
            if answer is not None:
                ok, value = answer
                if ok:
                    return value  # type: ignore[no-any-return]
                raise value
            _end(process)
            code = process.exitcode
            with self._lock:
                self._forget()
            raise WorkerLost(f"{self.name} ended before it answered (exit code {code})")

    def stop(self, timeout: float = 2.0) -> None:
        """End the process now (a call in progress raises WorkerLost); no new one starts."""
        with self._lock:
            self._stopped = True
            process = self._process
        if process is not None:
            _end(process, timeout)
        if self._calls.acquire(blocking=False):  # no call is using the pipe: release it
            try:
                with self._lock:
                    self._forget()
            finally:
                self._calls.release()

    def _forget(self) -> None:
        """Drop the (ended) process and close its pipe; ``_lock`` is held."""
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if process is not None:
            _end(process)  # its descriptors go with the object (stop may still be joining it)
        if conn is not None:
            conn.close()


def _end(process: BaseProcess, timeout: float = 2.0) -> None:
    """Terminate ``process`` (the worker is ours; what it did is restartable) and reap it."""
    if process.is_alive():
        process.terminate()
    process.join(timeout)
    if process.is_alive():
        process.kill()
        process.join(timeout)
