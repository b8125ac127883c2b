"""``learnae-gateway uninstall``: undo ``install``; the data stays unless ``--purge``.

Stops and disables the service, removes the unit, the gateway's Mosquitto files
and ``/etc/learnae`` (what install recorded as created); backups install made of
older files stay. ``--purge`` also removes ``/var/lib/learnae`` (readings,
models, keys) and the ``learnae`` user.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="print every step, change nothing")
    parser.add_argument("--root", type=Path, default=Path("/"),
                        help="uninstall from this staging directory instead of /")
    parser.add_argument("--purge", action="store_true",
                        help="also remove the data directory and the service user")


def run(args: argparse.Namespace) -> int:
    from gateway.system.actions import Staging, execute
    from gateway.system.host import HostError
    from gateway.system.install import Layout, plan_uninstall

    staging = Staging(args.root.resolve())
    if staging.live and not args.dry_run and os.geteuid() != 0:
        print("uninstall: run as root (or with --dry-run, or --root DIR)", file=sys.stderr)
        return 2
    try:
        actions = plan_uninstall(staging, purge=args.purge)
        execute(actions, staging, dry_run=args.dry_run, out=sys.stdout, verb="uninstall",
                idle="nothing to remove")
    except (OSError, HostError) as exc:
        print(f"uninstall: {exc}", file=sys.stderr)
        return 1
    if not args.purge and staging.path(Layout().data_dir).exists():
        print(f"uninstall: kept {Layout().data_dir} (the data; --purge removes it)")
    return 0
