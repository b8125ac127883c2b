"""``learnae-gateway sim``: run the real firmware under the MicroPython unix port.

The runner is ``gateway.rigs.board`` (the state directory stands for the board's
flash; deep sleep, reset and a new config restart the firmware as a board would).
``--board rp2`` / ``--board esp32`` (or ``LEARNAE_BOARD``) runs it against that
port's profile of the host shims.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from gateway.rigs.board import prepare_state_dir, run_firmware
from gateway.rigs.micropython import BOARDS
from shared.config import validate_device_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device-config", type=Path, required=True, help="device config JSON")
    parser.add_argument("--state-dir", type=Path, default=None,
                        help="the simulated flash (default .cache/sim/<device>)")
    parser.add_argument("--count", type=int, default=None,
                        help="stop after N readings (of this boot) are delivered")
    parser.add_argument("--heap", default="256k", help="MicroPython heap size, e.g. 64k")
    parser.add_argument("--mpy", type=Path, default=None,
                        help="run precompiled .mpy modules from this build directory")
    parser.add_argument("--board", choices=BOARDS, default=None,
                        help="board profile of the host shims (default $LEARNAE_BOARD or unix)")
    parser.add_argument("--replay-offset", type=int, default=0,
                        help="first AirQuality row extracted for a replay sensor")
    parser.add_argument("--replay-rows", type=int, default=0,
                        help="AirQuality rows extracted for a replay sensor (0 = to the end)")


def run(args: argparse.Namespace) -> int:
    try:
        conf = validate_device_config(json.loads(args.device_config.read_text()))
        state_dir = args.state_dir or Path(".cache") / "sim" / conf["device_id"]
        prepare_state_dir(args.device_config, state_dir, replay_offset=args.replay_offset,
                          replay_rows=args.replay_rows)
    except (OSError, ValueError) as exc:
        print(f"sim: {exc}", file=sys.stderr)
        return 2
    print(f"sim: {conf['device_id']} in {state_dir}", file=sys.stderr)

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    return run_firmware(state_dir, count=args.count, heap=args.heap, build_dir=args.mpy,
                        board=args.board)
