"""``learnae-gateway demo``: a private broker, simulated boards running the real firmware,
and gateways training together on this machine (``gateway.demo``).

Progress goes to stderr every few seconds; at the end (``--duration S``, or
Ctrl-C with ``--duration 0``) a summary: readings stored, rounds, loss per peer,
peak resident memory per gateway, and the alarms against the injected anomalies.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=60.0,
                        help="seconds to run after start-up; 0 runs until Ctrl-C (default 60)")
    parser.add_argument("--gateways", type=int, default=3, help="gateways (peers), default 3")
    parser.add_argument("--sensors", type=int, default=4, help="sensors per gateway, default 4")
    parser.add_argument("--port", type=int, default=8000,
                        help="dashboard port of the first gateway (default 8000)")
    parser.add_argument("--dir", type=Path, default=None,
                        help="working directory (default: a temporary one, removed at the end)")
    parser.add_argument("--period-ms", type=int, default=100,
                        help="sensor reading period in ms (default 100: ten readings a second)")


def run(args: argparse.Namespace) -> int:
    from gateway.demo.site import DemoSettings, run_demo

    if args.gateways < 1 or args.sensors < 1:
        print(f"demo: --gateways {args.gateways} and --sensors {args.sensors}: both must be"
              " at least 1", file=sys.stderr)
        return 2
    return run_demo(DemoSettings(duration=args.duration, gateways=args.gateways,
                                 sensors=args.sensors, port=args.port, dir=args.dir,
                                 period_ms=args.period_ms))
