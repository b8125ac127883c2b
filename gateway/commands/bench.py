"""``bench TARGET --json``: one benchmark module per target (see TARGETS).

Each module in gateway.bench exposes ``add_arguments(parser)`` and
``run(args) -> dict``; the result is printed as one JSON line. Benchmark
modules import heavy dependencies inside ``run`` so building the parser stays cheap.
"""

from __future__ import annotations

import argparse
import importlib

from gateway.commands.output import print_result

TARGETS = ("firmware", "ingest", "train", "api", "forecaster", "peer", "ledger", "soak", "ota")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="target", metavar="TARGET", required=True)
    for target in TARGETS:
        target_parser = sub.add_parser(target)
        target_parser.add_argument("--json", action="store_true", help="print one JSON object")
        importlib.import_module(f"gateway.bench.{target}").add_arguments(target_parser)


def run(args: argparse.Namespace) -> int:
    result = importlib.import_module(f"gateway.bench.{args.target}").run(args)
    print_result(result, args.json)
    return 0
