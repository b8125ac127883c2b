"""Device configs and broker credentials for sensor boards.

``make_device_config`` builds the JSON a board reads as ``/config.json``
(validated by ``shared.config``). ``add_device`` gives a device fresh MQTT
credentials and updates Mosquitto's password and ACL files in place, so the
device may publish and subscribe only under its own topics.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from gateway.system.passwords import password_hash
from shared.config import validate_device_config
from shared.topics import check_device_id, check_prefix

DEFAULT_SENSORS: list[dict[str, Any]] = [{"type": "simulated", "seed": 1}]


def make_device_config(
    device_id: str,
    *,
    mqtt_host: str,
    mqtt_port: int,
    topic_prefix: str = "learnae",
    username: str | None = None,
    password: str | None = None,
    sensors: list[dict[str, Any]] | None = None,
    period_ms: int = 1000,
    batch_size: int = 20,
    power_mode: str = "always_on",
    **extra: Any,
) -> dict[str, Any]:
    """A device config (as stored, without defaults filled in); raises ProtocolError if invalid."""
    doc: dict[str, Any] = {
        "v": 1,
        "device_id": device_id,
        "mqtt": {"host": mqtt_host, "port": mqtt_port, "topic_prefix": topic_prefix},
        "sensors": sensors if sensors is not None else [dict(s) for s in DEFAULT_SENSORS],
        "period_ms": period_ms,
        "batch_size": batch_size,
        "power_mode": power_mode,
    }
    if username is not None:
        doc["mqtt"]["username"] = username
    if password is not None:
        doc["mqtt"]["password"] = password
    doc.update(extra)
    validate_device_config(doc)
    return doc


def device_acl(prefix: str, device_id: str) -> list[str]:
    """ACL lines: write data/status, read config/model/cmd, OTA; nothing else."""
    base = f"{check_prefix(prefix)}/{check_device_id(device_id)}"
    return [
        f"topic write {base}/data",
        f"topic write {base}/status",
        f"topic read {base}/config",
        f"topic read {base}/model",
        f"topic read {base}/cmd",
        f"topic read {base}/ota",  # update chunks (docs/protocol.md, OTA)
        f"topic write {base}/status/ota",  # their acknowledgements
    ]


def upsert_password(path: Path, user: str, password: str) -> None:
    """Add or replace one user's line in a Mosquitto password file (mode 0600)."""
    lines = path.read_text().splitlines() if path.exists() else []
    kept = [ln for ln in lines if ln.strip() and ln.split(":", 1)[0] != user]
    kept.append(f"{user}:{password_hash(password)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(kept) + "\n")


def read_acl(path: Path) -> dict[str, list[str]]:
    """Parse an ACL file into user -> lines (lines before any ``user`` go under "")."""
    blocks: dict[str, list[str]] = {}
    current = ""
    if path.exists():
        for raw in path.read_text().splitlines():
            line = raw.strip()
            if not line:
                continue
            if line.startswith("user "):
                current = line[5:].strip()
                blocks.setdefault(current, [])
            else:
                blocks.setdefault(current, []).append(line)
    return blocks


def upsert_acl(path: Path, user: str, lines: list[str]) -> None:
    """Replace one user's block in an ACL file, keeping every other block."""
    blocks = read_acl(path)
    blocks[user] = list(lines)
    parts = []
    if blocks.get(""):
        parts.append("\n".join(blocks.pop("")))
    blocks.pop("", None)
    for name, body in blocks.items():
        parts.append("\n".join([f"user {name}", *body]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n\n".join(parts) + "\n")


def add_device(
    device_id: str,
    *,
    mqtt_host: str,
    mqtt_port: int,
    topic_prefix: str,
    password_file: Path,
    acl_file: Path,
    **config: Any,
) -> dict[str, Any]:
    """Fresh credentials, password + ACL entries, and the device config to flash."""
    check_device_id(device_id)
    password = secrets.token_urlsafe(18)
    doc = make_device_config(device_id, mqtt_host=mqtt_host, mqtt_port=mqtt_port,
                             topic_prefix=topic_prefix, username=device_id,
                             password=password, **config)
    upsert_password(password_file, device_id, password)
    upsert_acl(acl_file, device_id, device_acl(topic_prefix, device_id))
    return doc
