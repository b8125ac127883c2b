"""The ingest tests run real gateway processes without their API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway_rig import REPO, GatewayProcess, db_path, publisher, status, wait_for
from gateway_rig import write_config as gateway_config

from gateway.rigs.broker import PrivateBroker

__all__ = ["REPO", "GatewayProcess", "db_path", "publisher", "status", "wait_for",
           "write_config"]


def write_config(directory: Path, broker: PrivateBroker, prefix: str,
                 **sections: dict[str, Any]) -> Path:
    return gateway_config(directory, broker, prefix, api={"enabled": False}, **sections)
