"""Golden vectors: checked-in bytes both interpreters must encode and decode identically."""

import subprocess
import sys
from pathlib import Path

import pytest

from gateway import micropython_host

HERE = Path(__file__).parent
VECTORS = HERE / "vectors"
NAMES = sorted(p.stem for p in VECTORS.glob("*.bin"))


def check(argv: list[str], env: dict[str, str] | None = None) -> dict[str, str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, check=True)
    return dict(line.split(" ", 1) for line in done.stdout.splitlines())


def test_there_are_vectors() -> None:
    assert NAMES == ["batch_20x3", "missing_and_anomalies", "single_reading_no_clock"]


def test_cpython_reproduces_vectors() -> None:
    results = check([sys.executable, str(HERE / "vectors_check.py"), str(VECTORS)])
    assert results == dict.fromkeys(NAMES, "ok")


@pytest.mark.parametrize("heap", ["64k"])
def test_micropython_reproduces_vectors(heap: str) -> None:
    argv, env = micropython_host.command(
        HERE / "vectors_check.py", str(VECTORS), heap=heap
    )
    assert check(argv, env) == dict.fromkeys(NAMES, "ok")


def test_binary_batch_costs_at_most_8_bytes_per_reading() -> None:
    payload = (VECTORS / "batch_20x3.bin").read_bytes()
    per_reading = len(payload) / (20 * 3)
    assert per_reading <= 8
    assert len(payload) == 278  # the figure docs/protocol.md states
    assert len((VECTORS / "batch_20x3.json").read_bytes()) == 511
