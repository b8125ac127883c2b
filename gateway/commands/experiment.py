"""``experiment resilience --json [--peers N]``: LEARNAE's resilience study, in process;
``experiment federation --json [--site NAME=CSV ...]``: what federation does for forecasting.
(``experiment replay``: a history through the live detector, see gateway/commands/replay.py.)

Peers run on the local adapters (in-process gossip hub, per-peer stores);
progress goes to stderr and the result is one JSON object, the last line of stdout.
"""

from __future__ import annotations

import argparse
import json
import sys

SCENARIOS = ("none", "offline", "partition", "churn", "byzantine", "ledger_only")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="study", metavar="STUDY", required=True)
    study = sub.add_parser("resilience", help="accuracy and traffic under failures and attacks")
    study.add_argument("--json", action="store_true", help="print one JSON object")
    study.add_argument("--peers", type=int, default=8, help="number of peers (default 8)")
    study.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="rounds per scenario (default 60 up to 8 peers, 15 more per doubling: 90 for 32)",
    )
    study.add_argument("--seed", type=int, default=0)
    study.add_argument("--epochs", type=int, default=4, help="local epochs per round (default 4)")
    study.add_argument(
        "--batch-size", type=int, default=8, help="local mini-batch size (default 8)"
    )
    study.add_argument(
        "--staleness-half-life",
        type=float,
        default=4.0,
        help="rounds after which an older model counts half in fusion (default 4)",
    )
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
    study.add_argument(
        "--no-server-reference",
        action="store_true",
        help="skip the reference run where a server averages every peer each round",
    )
    fed = sub.add_parser("federation", help="forecast error per site: local, LEARNAE, baselines")
    fed.add_argument("--json", action="store_true", help="print one JSON object")
    fed.add_argument("--site", action="append", default=[], metavar="NAME=CSV",
                     help="a site's CSV (repeat; default: the AirQuality year in four seasons)")
    fed.add_argument("--train-hours", type=float, default=None,
                     help="keep only the last N hours before each site's test period")
    fed.add_argument("--horizon", type=int, default=1, help="readings predicted ahead (1)")
    fed.add_argument("--labels", default=None, metavar="COLUMN",
                     help="a 0/1 anomaly column: report event precision, recall, delay")
    fed.add_argument("--time-column", default=None, metavar="C",
                     help="the time column (default: the first)")
    fed.add_argument("--rounds", type=int, default=12, help="LEARNAE rounds (default 12)")
    fed.add_argument("--epochs", type=int, default=4, help="local epochs per round (4)")
    fed.add_argument("--window", type=int, default=8, help="readings per window (8)")
    fed.add_argument("--seed", type=int, default=0)
    from gateway.commands import replay

    replay.add_parser(sub)


def run_federation_command(args: argparse.Namespace) -> int:
    from gateway.data.sites import (
        SiteError,
        airquality_seasons,
        load_site_csv,
        parse_site_argument,
    )
    from gateway.experiments.federation import FederationConfig, run_federation

    for flag, value, lo in (("--horizon", args.horizon, 1), ("--rounds", args.rounds, 1),
                            ("--epochs", args.epochs, 1), ("--window", args.window, 1)):
        if value < lo or (flag in ("--horizon", "--window") and value > 255):
            print(f"{flag} {value}: must be in {lo}..255", file=sys.stderr)
            return 2
    if args.train_hours is not None and not args.train_hours > 0:
        print(f"--train-hours {args.train_hours}: must be > 0", file=sys.stderr)
        return 2
    try:
        if args.site:
            sites = [load_site_csv(name, path, time_column=args.time_column, labels=args.labels)
                     for name, path in map(parse_site_argument, args.site)]
        elif args.labels is not None or args.time_column is not None:
            raise SiteError("--labels and --time-column apply to --site CSV files")
        else:
            sites = airquality_seasons()
        cfg = FederationConfig(horizon=args.horizon, train_hours=args.train_hours,
                               rounds=args.rounds, epochs=args.epochs, window=args.window,
                               seed=args.seed)
        result = run_federation(sites, cfg)
    except SiteError as exc:
        print(f"experiment federation: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    if args.study == "federation":
        return run_federation_command(args)
    if args.study == "replay":
        from gateway.commands import replay

        return replay.run(args)

    from gateway.experiments.resilience import (
        StudyConfig,
        default_rounds,
        run_study,
        with_scenarios,
    )

    if args.peers < 3:
        print(f"--peers {args.peers}: the study needs at least 3 peers", file=sys.stderr)
        return 2
    rounds = default_rounds(args.peers) if args.rounds is None else args.rounds
    for flag, value in (
        ("--rounds", rounds),
        ("--epochs", args.epochs),
        ("--batch-size", args.batch_size),
    ):
        if value < 1:
            print(f"{flag} {value}: must be at least 1", file=sys.stderr)
            return 2
    if not args.staleness_half_life > 0:
        print(f"--staleness-half-life {args.staleness_half_life}: must be > 0", file=sys.stderr)
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
        rounds=rounds,
        seed=args.seed,
        robust_fusion=args.robust_fusion,
        wire_check=not args.no_wire_check,
        server_reference=not args.no_server_reference,
        epochs=args.epochs,
        batch_size=args.batch_size,
        staleness_half_life=args.staleness_half_life,
        lr_half_life=max(rounds / 5, 1.0),
    )
    result = run_study(cfg)
    if args.json:
        print(json.dumps(result))
    else:
        print(json.dumps(result, indent=2))
    return 0
