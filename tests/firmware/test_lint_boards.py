"""`make lint` type-checks the firmware once per board: each board's stubs live in a
directory of their own (`make stubs`: .cache/stubs/<board>), so a call that one
board's API lacks is caught for that board and not for the other."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STUBS = REPO / ".cache" / "stubs"

# machine.wake_reason() exists on the ESP32 port only (its stubs have it, rp2's do not);
# machine.deepsleep() takes one argument at most everywhere (the firmware's config
# turns the arg-type check off, argument counts are checked).
SNIPPET = '''import machine

reason = machine.wake_reason()
machine.WDT(timeout=8000).feed()
'''
WRONG_EVERYWHERE = "import machine\n\nmachine.deepsleep(1000, 1)\n"


def mypy(board: str, source: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    stubs = STUBS / board
    assert (stubs / "machine.pyi").exists(), f"{stubs} is missing: run `make stubs`"
    cache = tmp_path / board / ".mypy_cache"
    module = tmp_path / board / "board_call.py"
    module.parent.mkdir(parents=True, exist_ok=True)
    module.write_text(source)
    env = {**os.environ, "LEARNAE_STUBS": str(stubs)}
    return subprocess.run([sys.executable, "-m", "mypy", "--config-file",
                           "edge_firmware/mypy.ini", "--cache-dir", str(cache), str(module)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_a_call_one_board_lacks_is_caught_for_that_board_only(tmp_path: Path) -> None:
    rp2 = mypy("rp2", SNIPPET, tmp_path)
    assert rp2.returncode == 1, rp2.stdout
    assert 'Module has no attribute "wake_reason"' in rp2.stdout
    esp32 = mypy("esp32", SNIPPET, tmp_path)
    assert esp32.returncode == 0, esp32.stdout


@pytest.mark.parametrize("board", ["rp2", "esp32"])
def test_a_wrong_argument_is_caught_on_every_board(board: str, tmp_path: Path) -> None:
    done = mypy(board, WRONG_EVERYWHERE, tmp_path)
    assert done.returncode == 1, done.stdout
    assert 'No overload variant of "deepsleep" matches argument types "int", "int"' in done.stdout
