"""Golden vectors: checked-in bytes both interpreters must encode and decode identically."""

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.rigs import micropython

HERE = Path(__file__).parent
VECTORS = HERE / "vectors"
NAMES = sorted(p.stem for p in VECTORS.glob("*.bin"))


def check(argv: list[str], env: dict[str, str] | None = None) -> dict[str, str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, check=True)
    return dict(line.split(" ", 1) for line in done.stdout.splitlines())


def test_there_are_vectors() -> None:
    assert NAMES == ["batch_20x3", "batch_20x3_scaled", "missing_and_anomalies",
                     "single_reading_no_clock"]


def test_cpython_reproduces_vectors() -> None:
    results = check([sys.executable, str(HERE / "vectors_check.py"), str(VECTORS)])
    assert results == dict.fromkeys(NAMES, "ok")


@pytest.mark.parametrize("heap", ["64k"])
def test_micropython_reproduces_vectors(heap: str) -> None:
    argv, env = micropython.command(
        HERE / "vectors_check.py", str(VECTORS), heap=heap
    )
    assert check(argv, env) == dict.fromkeys(NAMES, "ok")


def test_binary_batch_costs_at_most_8_bytes_per_reading() -> None:
    """A reading is one record (device, boot, seq) of all channels: 20 here."""
    scaled = (VECTORS / "batch_20x3_scaled.bin").read_bytes()
    assert len(scaled) / 20 <= 8
    # the figures docs/protocol.md states
    assert len(scaled) == 158
    assert len((VECTORS / "batch_20x3.bin").read_bytes()) == 278
    assert len((VECTORS / "batch_20x3_scaled.json").read_bytes()) == 491
