"""``status --config FILE [--json]``: what the store holds, read-only (safe while running)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from gateway.config import ConfigError, load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="gateway TOML config file")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--quarantine", type=int, default=0, metavar="N",
                        help="also list the N newest rejected payloads")


def _empty() -> dict[str, Any]:
    return {"devices": {}, "stored": 0, "duplicates": 0, "rejected": 0,
            "rejected_by_reason": {}, "quarantine": 0, "schema_version": 0,
            "ingest": {"state": "no database"}}


def run(args: argparse.Namespace) -> int:
    from gateway.store import Store, StoreError

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    path = config.db_path
    if not path.exists():
        print(f"no database at {str(path)!r} yet (the gateway has not run)", file=sys.stderr)
        summary = _empty()
        quarantined: list[dict[str, Any]] = []
    else:
        try:
            with Store.open(path, readonly=True) as store:
                summary = store.summary()
                quarantined = store.quarantine(args.quarantine) if args.quarantine else []
        except StoreError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    if args.quarantine:
        summary["quarantined"] = quarantined
    if args.json:
        print(json.dumps(summary))
        return 0
    print(_table(summary))
    return 0


def _ago(ts: float | None) -> str:
    if not ts:
        return "never"
    delta = time.time() - ts
    return f"{delta:.0f}s ago" if delta < 120 else time.strftime("%Y-%m-%d %H:%M:%S",
                                                                   time.localtime(ts))


def _table(s: dict[str, Any]) -> str:
    head = ("device", "online", "stored", "boots", "dups", "rejected", "firmware", "last seen")
    rows = [head]
    for name, d in s["devices"].items():
        rows.append((name, "yes" if d["online"] else "no", str(d["stored"]), str(d["boots"]),
                     str(d["duplicates"]), str(d["rejected"]), d["firmware"] or "-",
                     _ago(d["last_seen"])))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in rows]
    ingest = s.get("ingest", {})
    lines += [
        "",
        f"stored {s['stored']}  duplicates {s['duplicates']}  rejected {s['rejected']}"
        f" {s['rejected_by_reason'] or ''}  quarantine {s['quarantine']}",
        f"ingest: {ingest.get('state')}" + (f" ({ingest['error']})" if ingest.get("error")
                                            else "")
        + (f", mqtt {ingest['mqtt']}" if ingest.get("mqtt") else ""),
    ]
    for q in s.get("quarantined", []):
        lines.append(f"  {q['topic']}  {q['reason']}: {q['detail']}  [{q['head'][:32]}]")
    return "\n".join(lines)
