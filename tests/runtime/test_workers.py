"""The worker process: calls run there at lower priority; ``stop`` ends it at once."""

from __future__ import annotations

import os
import threading
import time

import pytest

from gateway.errors import WorkerLost
from gateway.runtime.workers import WorkerProcess


def _nice_and_pid() -> tuple[int, int]:
    return os.nice(0), os.getpid()


def _fail(message: str) -> None:
    raise ValueError(message)


def _sleep(seconds: float) -> str:
    time.sleep(seconds)
    return "slept"


def call_in_thread(worker: WorkerProcess, seconds: float
                   ) -> tuple[threading.Thread, list[BaseException]]:
    """``worker.call(_sleep, seconds)`` in a thread; what it raises lands in the list."""
    caught: list[BaseException] = []

    def long_call() -> None:
        try:
            worker.call(_sleep, seconds)
        except BaseException as exc:
            caught.append(exc)

    thread = threading.Thread(target=long_call)
    thread.start()
    return thread, caught


def test_calls_run_in_one_niced_process_kept_between_calls() -> None:
    worker = WorkerProcess(nice=7)
    try:
        nice, pid = worker.call(_nice_and_pid)
        assert nice == os.nice(0) + 7 and pid != os.getpid()
        assert worker.call(_nice_and_pid)[1] == pid  # the same process, imports kept warm
        assert worker.running
    finally:
        worker.stop()
    assert not worker.running


def test_an_exception_in_the_call_is_raised_here_and_the_worker_goes_on() -> None:
    worker = WorkerProcess()
    try:
        with pytest.raises(ValueError, match="bad settings"):
            worker.call(_fail, "bad settings")
        assert worker.call(_sleep, 0) == "slept"
    finally:
        worker.stop()


def test_stop_ends_a_call_in_progress_at_once_and_no_process_starts_after() -> None:
    worker = WorkerProcess()
    worker.call(_sleep, 0)  # started
    thread, caught = call_in_thread(worker, 60)
    time.sleep(0.5)
    started = time.monotonic()
    worker.stop()
    thread.join(10)
    assert time.monotonic() - started < 5
    assert len(caught) == 1 and isinstance(caught[0], WorkerLost)
    assert not worker.running
    with pytest.raises(WorkerLost, match="is stopped"):
        worker.call(_sleep, 0)


def test_a_killed_process_is_lost_and_the_next_call_starts_a_new_one() -> None:
    worker = WorkerProcess()
    try:
        _, pid = worker.call(_nice_and_pid)
        thread, caught = call_in_thread(worker, 60)
        time.sleep(0.5)
        os.kill(pid, 9)
        thread.join(10)
        assert len(caught) == 1 and isinstance(caught[0], WorkerLost)
        assert "exit code -9" in str(caught[0])
        assert worker.call(_nice_and_pid)[1] != pid
    finally:
        worker.stop()
