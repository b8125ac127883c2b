"""``learnae-gateway run --config FILE``: the gateway service in the foreground.

Exit codes: 0 after a clean stop (SIGTERM/SIGINT), 2 for a config file that
cannot be used (the message names key and value), 1 when a part cannot start.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, required=True, help="gateway TOML config file")
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="log level on stderr (default INFO)",
    )


def run(args: argparse.Namespace) -> int:
    from gateway.config import ConfigError, load_config

    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"learnae-gateway: config error: {exc}", file=sys.stderr)
        return 2

    from gateway.runtime.memory import limit_malloc_arenas
    from gateway.service import GatewayService, ServiceError

    limit_malloc_arenas()  # before any of the service's threads allocate
    service = GatewayService(config)
    # Handlers go in before start so a SIGTERM during start-up is not lost.
    signal.signal(signal.SIGTERM, service.request_stop)
    signal.signal(signal.SIGINT, service.request_stop)
    try:
        service.start()
    except ServiceError as exc:
        print(f"learnae-gateway: cannot start: {exc}", file=sys.stderr)
        return 1
    api = f"; api {service.api.url}" if service.api else ""
    parts = ", ".join(service.parts())
    print(f"learnae-gateway: ready ({parts}{api})", file=sys.stderr, flush=True)
    try:
        service.run_until_stopped()
    finally:
        service.stop()
    print("learnae-gateway: stopped", file=sys.stderr)
    return 0
