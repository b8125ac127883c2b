"""``learnae-gateway sim``: run the real firmware under the MicroPython unix port.

The device config is validated with the same schema the board uses, copied to
``<state-dir>/config.json`` and the firmware runs with that directory as its
working directory, so ``state.json`` (boot counter) and the flash spool live
there across runs, as they would in a board's flash. Deep sleep is a process
exit with code 3: the runner starts the firmware again with
``LEARNAE_WAKE=deepsleep`` (a wake, not a boot). Exit code 4 is a reset
(a new boot). Exit code 5 follows the validation of a new or changed config
(a board soft-resets there): the firmware starts again with the same wake
flag. A ``replay`` sensor whose CSV is absent gets a stretch of the bundled
AirQuality year.

``--board rp2`` / ``--board esp32`` (or ``LEARNAE_BOARD``) runs the firmware
against that port's profile of the host shims (edge_firmware/host/machine.py):
the board's file from ``hardware/boards`` becomes ``board.json`` (unless the
state directory has one), and a watchdog that bites ends the process with
SIGUSR1, a watchdog reset: the firmware starts again as a new boot, and
``stderr`` says so.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import shutil
import signal
import sys
from pathlib import Path

from gateway import micropython_host
from shared.config import validate_device_config
from shared.errors import ProtocolError

EXIT_DEEPSLEEP = 3
EXIT_RESET = 4
EXIT_REVALIDATED = 5  # a board soft-resets after validating a changed config
EXIT_WATCHDOG = -signal.SIGUSR1  # a board profile's watchdog bit (host/machine.py)
BOARD_FILES = {"rp2": "pico-w.json", "esp32": "esp32-devkitc.json"}
BOARDS_DIR = Path(__file__).resolve().parents[2] / "hardware" / "boards"
HOST_SHIMS = micropython_host.FIRMWARE_DIR / "host"
AIRQUALITY = Path(__file__).resolve().parent.parent / "data" / "airquality.csv.gz"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device-config", type=Path, required=True, help="device config JSON")
    parser.add_argument("--state-dir", type=Path, default=None,
                        help="the simulated flash (default .cache/sim/<device>)")
    parser.add_argument("--count", type=int, default=None,
                        help="stop after N readings (of this boot) are delivered")
    parser.add_argument("--heap", default="256k", help="MicroPython heap size, e.g. 64k")
    parser.add_argument("--mpy", type=Path, default=None,
                        help="run precompiled .mpy modules from this build directory")
    parser.add_argument("--board", choices=micropython_host.BOARDS, default=None,
                        help="board profile of the host shims (default $LEARNAE_BOARD or unix)")
    parser.add_argument("--replay-offset", type=int, default=0,
                        help="first AirQuality row extracted for a replay sensor")
    parser.add_argument("--replay-rows", type=int, default=0,
                        help="AirQuality rows extracted for a replay sensor (0 = to the end)")


def extract_airquality(dest: Path, columns: list[str], offset: int = 0, rows: int = 0,
                       source: Path = AIRQUALITY) -> int:
    """Write a stretch of the bundled AirQuality CSV (only ``columns``) to ``dest``."""
    if not source.exists():
        raise FileNotFoundError(f"bundled data {source} is missing")
    written = 0
    with gzip.open(source, "rt", newline="") as src, dest.open("w", newline="") as out:
        reader = csv.reader(src)
        header = next(reader)
        missing = [c for c in columns if c not in header]
        if missing:
            raise ProtocolError(f"replay columns {missing!r} are not in {source.name}: {header}")
        idx = [header.index(c) for c in columns]
        writer = csv.writer(out)
        writer.writerow(columns)
        for i, row in enumerate(reader):
            if i < offset:
                continue
            if rows and written >= rows:
                break
            writer.writerow([row[k] if k < len(row) else "" for k in idx])
            written += 1
    return written


def prepare_state_dir(config_path: Path, state_dir: Path, *, replay_offset: int = 0,
                      replay_rows: int = 0) -> dict:
    """Validate the config, copy it (and any replay CSV) into ``state_dir``."""
    doc = json.loads(config_path.read_text())
    conf = validate_device_config(doc)
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "config.json").write_text(json.dumps(doc))
    for sensor in conf["sensors"]:
        if sensor["type"] != "replay":
            continue
        target = state_dir / sensor["path"]
        beside = config_path.parent / sensor["path"]
        if beside.exists() and beside.resolve() != target.resolve():
            shutil.copyfile(beside, target)
        elif not target.exists():
            extract_airquality(target, sensor["columns"], replay_offset, replay_rows)
    return conf


def install_board_file(state_dir: Path, board: str | None) -> None:
    """A board profile's ``board.json`` (from hardware/boards), unless one is there."""
    name = BOARD_FILES.get(board or "")
    if name and not (state_dir / "board.json").exists():
        shutil.copyfile(BOARDS_DIR / name, state_dir / "board.json")


def run_firmware(state_dir: Path, *, count: int | None = None, heap: str = "256k",
                 build_dir: Path | None = None, stdout=None, stderr=None,
                 board: str | None = None) -> int:
    """Run the firmware until it exits for good; restart it after deep sleep or reset."""
    wake: bool | str = False
    board = board or os.environ.get("LEARNAE_BOARD") or None
    install_board_file(state_dir, board)
    build: Path | None = None
    build_host = HOST_SHIMS
    if build_dir is not None:
        # paths relative to the working directory: MicroPython interns every
        # module's file name for good, and a board's are short ("agent.mpy")
        host = build_dir / "host" if (build_dir / "host").exists() else HOST_SHIMS
        build = Path(os.path.relpath(build_dir.resolve(), state_dir.resolve()))
        build_host = Path(os.path.relpath(host.resolve(), state_dir.resolve()))
    while True:
        env = dict(os.environ)
        env.pop("LEARNAE_WAKE", None)
        if wake:
            env["LEARNAE_WAKE"] = "deepsleep" if wake is True else wake
        args = ["--count", str(count)] if count is not None else []
        script: Path | str = "-m main" if build else micropython_host.FIRMWARE_DIR / "main.py"
        proc = micropython_host.spawn(script, *args, heap=heap, extra_path=[build_host],
                                      build_dir=build, env=env, cwd=state_dir,
                                      stdout=stdout, stderr=stderr, board=board)
        try:
            code = proc.wait()
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)
            proc.wait()
            return 130
        if code == EXIT_DEEPSLEEP:
            wake = True
            continue
        if code == EXIT_RESET:
            wake = "reset"
            continue
        if code == EXIT_WATCHDOG:
            log = stderr if hasattr(stderr, "write") and "b" not in getattr(
                stderr, "mode", "") else sys.stderr
            print("sim: watchdog reset", file=log, flush=True)
            wake = "watchdog"
            continue
        if code == EXIT_REVALIDATED:  # the config was validated: start again, same wake
            continue
        return code


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
