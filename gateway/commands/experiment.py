"""``experiment resilience --json [--peers N]``: LEARNAE's resilience study, in process.

Peers run on the local adapters (in-process gossip hub, per-peer stores);
progress goes to stderr and the result is one JSON object, the last line of stdout.
"""

from __future__ import annotations

import argparse
import json
import sys

SCENARIOS = ("none", "offline", "partition", "churn", "byzantine")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="study", metavar="STUDY", required=True)
    study = sub.add_parser("resilience", help="accuracy and traffic under failures and attacks")
    study.add_argument("--json", action="store_true", help="print one JSON object")
    study.add_argument("--peers", type=int, default=8, help="number of peers (default 8)")
    study.add_argument("--rounds", type=int, default=60, help="rounds per scenario (default 60)")
    study.add_argument("--seed", type=int, default=0)
    study.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated subset of {','.join(SCENARIOS)}",
    )
    study.add_argument(
        "--robust-fusion", default="trimmed_mean", choices=("median", "trimmed_mean", "krum")
    )
    study.add_argument(
        "--no-wire-check", action="store_true", help="skip the float32 comparison run"
    )


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from gateway.peer.study import StudyConfig, run_study, with_scenarios

    if args.peers < 3:
        print(f"--peers {args.peers}: the study needs at least 3 peers", file=sys.stderr)
        return 2
    names = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    try:
        cfg = with_scenarios(StudyConfig(), names)
    except ValueError as exc:
        print(f"--scenarios: {exc}", file=sys.stderr)
        return 2
    cfg = replace(
        cfg,
        peers=args.peers,
        rounds=args.rounds,
        seed=args.seed,
        robust_fusion=args.robust_fusion,
        wire_check=not args.no_wire_check,
        lr_half_life=max(args.rounds / 5, 1.0),
    )
    result = run_study(cfg)
    if args.json:
        print(json.dumps(result))
    else:
        print(json.dumps(result, indent=2))
    return 0
