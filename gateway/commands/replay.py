"""``experiment replay --csv FILE [--train-fraction F] [--out FILE.csv] --json``.

A user's history streamed through the gateway's own detector as it would run live, so
they see how the gateway would have flagged it before deploying. Progress goes to stderr;
the summary is one JSON object, the last line of stdout. ``--airquality`` replays the
bundled AirQuality year instead of a file; ``--inject-spikes N`` and ``--inject-shift``
add known anomalies and report how each was flagged.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import replace
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("replay", help="a CSV history through the live detector")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--csv", type=Path, help="timestamp column + numeric channels")
    src.add_argument("--airquality", action="store_true", help="the bundled AirQuality year")
    p.add_argument("--time-column", default=None, help="default: the first column")
    p.add_argument("--train-fraction", type=float, default=0.15,
                   help="rows that arrive before the first training (default 0.15)")
    p.add_argument("--out", type=Path, default=None,
                   help="write time, score (s/(s+threshold)), flag, event id per input row")
    p.add_argument("--config", type=Path, default=None,
                   help="gateway config whose [training] settings to use")
    p.add_argument("--period", type=float, default=None,
                   help="grid period in seconds (default: the median spacing of the rows)")
    p.add_argument("--inject-spikes", type=int, default=0, help="add N one-reading spikes")
    p.add_argument("--inject-shift", action="store_true", help="add one sustained level shift")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--board", action="store_true",
                   help="score as the boards' LEM scorer does (no adaptation), to compare")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _fail(message: str) -> int:
    print(f"experiment replay: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from gateway.config import ConfigError, TrainingSection, load_config
    from gateway.learning.csvseries import CsvError, read_csv_series
    from gateway.learning.replay import (
        inject,
        judge_injected,
        median_period,
        replay,
        write_scores,
    )

    if not 0 < args.train_fraction < 1:
        return _fail(f"--train-fraction {args.train_fraction!r} is outside (0, 1)")
    if args.inject_spikes < 0:
        return _fail(f"--inject-spikes {args.inject_spikes!r} must not be negative")
    if args.period is not None and not args.period > 0:
        return _fail(f"--period {args.period!r} must be > 0")
    try:
        settings = load_config(args.config).training if args.config else TrainingSection()
    except ConfigError as exc:
        return _fail(str(exc))
    if args.airquality:
        from gateway.data.airquality import load_airquality

        rec = load_airquality()
        ts, values, channels = rec.ts, rec.values, list(rec.channels)
        lines = np.arange(2, ts.shape[0] + 2)
        source = "airquality"
    else:
        try:
            series = read_csv_series(args.csv, args.time_column)
        except CsvError as exc:
            return _fail(str(exc))
        ts, values, channels, lines = series.ts, series.values, series.channels, series.lines
        source = str(args.csv)
    back = np.flatnonzero(np.diff(ts) <= 0)
    if back.shape[0]:
        i = int(back[0]) + 1
        return _fail(f"{source} line {int(lines[i])}: time {float(ts[i])!r} is not after "
                     f"the previous row's {float(ts[i - 1])!r} (rows must be in time order, "
                     "one per time)")
    if ts.shape[0] < 3:
        return _fail(f"{source}: {ts.shape[0]} rows, a replay needs at least 3")
    period = args.period or median_period(ts)
    settings = replace(settings, period_s=period)
    first = math.ceil(args.train_fraction * ts.shape[0])
    injected = None
    if args.inject_spikes or args.inject_shift:
        injected = inject(values, spikes=args.inject_spikes, shift=args.inject_shift,
                          start=first, seed=args.seed)
        values = injected.values

    def progress(msg: str) -> None:
        print(msg, file=sys.stderr)

    out = replay(ts, values, channels, settings, train_fraction=args.train_fraction,
                 progress=progress, board=args.board)
    summary = dict(out.summary, source=source, channels=channels,
                   scorer="board" if args.board else "gateway")
    summary["event_list"] = [e.to_dict() for e in out.events[:1000]]
    if injected is not None:
        summary["injected"] = judge_injected(out, injected, channels[0],
                                             settings.anomaly_event_gap)
    if args.out is not None:
        try:
            write_scores(args.out, out)
        except OSError as exc:
            return _fail(f"--out {str(args.out)!r} cannot be written: {exc.strerror}")
        summary["out"] = str(args.out)
    print(json.dumps(summary) if args.json else json.dumps(summary, indent=2))
    return 0
