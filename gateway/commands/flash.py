"""``learnae-gateway flash``: put the firmware, protocol, board file and config on a board.

Modules are compiled for the board's architecture (``gateway.firmware``);
``--dry-run`` prints the exact mpremote commands.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from gateway.errors import FirmwareError
from gateway.firmware import BOARDS_DIR, build_firmware, load_board, mpremote_commands, run_mpremote
from shared.config import validate_device_config


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
            raise FirmwareError("no board: set \"board\" in the device config or pass --board")
        board = load_board(board_name)
        build_dir = args.build_dir or Path(tempfile.mkdtemp(prefix="learnae-fw-"))
        build_firmware(build_dir, arch=board.get("mpy_arch"))
    except (OSError, ValueError, FirmwareError) as exc:
        print(f"flash: {exc}", file=sys.stderr)
        return 2
    cmds = mpremote_commands(args.port, build_dir, BOARDS_DIR / f"{board_name}.json",
                             args.device_config)
    try:
        run_mpremote(cmds, dry_run=args.dry_run)
    except FirmwareError as exc:
        print(f"flash: {exc}", file=sys.stderr)
        return 1
    return 0
