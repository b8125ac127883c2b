"""``learnae-gateway install``: set this machine up to run the gateway as a service.

Creates the ``learnae`` system user, ``/etc/learnae/gateway.toml`` from the flags,
the secrets file with a generated MQTT password (0600), Mosquitto's conf.d file,
ACL and password file (for the ``mosquitto`` user), the systemd unit, then runs
``daemon-reload`` and ``enable --now``. Files that exist with other content are
backed up first. A second run changes nothing and says so. ``--dry-run`` prints
every step without doing it; ``--root DIR`` installs into a staging tree (the
steps that need the live system are listed as not done).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="print every step, change nothing")
    parser.add_argument("--root", type=Path, default=Path("/"),
                        help="install into this staging directory instead of /")
    parser.add_argument("--gateway-id", default=None, help="gateway id (default: host name)")
    parser.add_argument("--prefix", default="learnae", help="MQTT topic prefix")
    parser.add_argument("--mqtt-user", default="learnae-gateway", help="the gateway's MQTT user")
    parser.add_argument("--mqtt-port", type=int, default=1883)
    parser.add_argument("--mqtt-bind", default="127.0.0.1",
                        help="address of Mosquitto's plain listener (0.0.0.0: the LAN)")
    parser.add_argument("--api-port", type=int, default=8000)
    parser.add_argument("--exec", dest="exec_path", type=Path, default=None,
                        help="the learnae-gateway command the unit runs (default: this one)")
    tls = parser.add_argument_group("TLS listener for boards (Mosquitto)")
    tls.add_argument("--tls-port", type=int, default=None)
    tls.add_argument("--tls-bind", default="0.0.0.0")
    tls.add_argument("--cafile", type=Path, default=None)
    tls.add_argument("--certfile", type=Path, default=None)
    tls.add_argument("--keyfile", type=Path, default=None)
    tls.add_argument("--require-certificate", action="store_true",
                     help="boards must present a client certificate signed by the CA")


def default_exec() -> Path:
    """This installation's ``learnae-gateway`` script (beside the interpreter)."""
    beside = Path(sys.executable).parent / "learnae-gateway"
    if beside.exists():
        return beside
    found = shutil.which("learnae-gateway")
    return Path(found) if found else beside


def run(args: argparse.Namespace) -> int:
    from gateway.system.actions import Staging, execute
    from gateway.system.host import HostError
    from gateway.system.install import Options, plan_install

    staging = Staging(args.root.resolve())
    if staging.live and not args.dry_run and os.geteuid() != 0:
        print("install: run as root (or with --dry-run, or --root DIR to stage)",
              file=sys.stderr)
        return 2
    if args.tls_port is not None and None in (args.cafile, args.certfile, args.keyfile):
        print(f"install: --tls-port {args.tls_port} needs --cafile, --certfile and --keyfile",
              file=sys.stderr)
        return 2
    extra = {"gateway_id": args.gateway_id} if args.gateway_id else {}
    options = Options(
        exec_path=args.exec_path or default_exec(), prefix=args.prefix,
        mqtt_user=args.mqtt_user, mqtt_port=args.mqtt_port, mqtt_bind=args.mqtt_bind,
        api_port=args.api_port, tls_port=args.tls_port, tls_bind=args.tls_bind,
        cafile=args.cafile, certfile=args.certfile, keyfile=args.keyfile,
        require_certificate=args.require_certificate, **extra)
    try:
        staging.root.mkdir(parents=True, exist_ok=True)
        actions = plan_install(options, staging)
        execute(actions, staging, dry_run=args.dry_run, out=sys.stdout)
    except (OSError, ValueError, HostError) as exc:
        print(f"install: {exc}", file=sys.stderr)
        return 1
    return 0
