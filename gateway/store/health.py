"""The writer's health side file, next to the database.

When the database cannot be written, the writer cannot record that in the
database: it writes ``<db>-health.json`` instead (best effort, atomically), and
``status``/``Store.summary()`` read it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def health_path(db_path: Path) -> Path:
    """Side file where the writer reports trouble it cannot write into the database itself."""
    return db_path.with_name(db_path.name + "-health.json")


def read_health(db_path: Path) -> dict[str, Any]:
    """The writer's last reported state; ``{"state": "unknown"}`` when none was written.

    ``running`` says whether the process that wrote it is still alive (a SIGKILLed gateway
    cannot update the file; the check is only meaningful on the same host).
    """
    try:
        doc = json.loads(health_path(db_path).read_text())
    except (OSError, ValueError):
        return {"state": "unknown"}
    if not isinstance(doc, dict):
        return {"state": "unknown"}
    pid = doc.get("pid")
    if isinstance(pid, int) and pid > 0:
        try:
            os.kill(pid, 0)
            doc["running"] = doc.get("mqtt") != "stopped"
        except ProcessLookupError:
            doc["running"] = False
        except PermissionError:
            doc["running"] = True  # alive, owned by another user
    return doc


def write_health(db_path: Path, doc: dict[str, Any]) -> bool:
    """Best effort (the disk may be the thing that is full): temp file + rename."""
    target = health_path(db_path)
    tmp = target.with_name(target.name + ".tmp")
    try:
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, target)
        return True
    except OSError:
        return False


