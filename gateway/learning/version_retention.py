"""Model-version retention: how many of a device's versions the registry keeps.

A version is registered at every training (every round under LEARNAE), each tens of
kilobytes, so ``training.keep_versions = N`` (0: keep all) keeps a device's newest N
versions and always its current (newest promoted) one of each task; the older ones are
deleted in the transaction that registers the new one. How many were dropped is counted
per device (``model_versions_pruned``), so the API's round numbers stay the same.

The other retentions: readings (``store.retention_*``, ``Store.apply_retention``) and the
peer's content-store pins (``peer.keep_rounds``, ``gateway.peer.pin_retention``).
"""

from __future__ import annotations

import sqlite3

__all__ = ["prune_versions"]

PROMOTED = "promoted"


def prune_versions(conn: sqlite3.Connection, device: str, keep: int) -> int:
    """Delete ``device``'s versions older than its newest ``keep``, but not its current one
    (of any task), and add them to its pruned count; returns how many went. Run it inside
    the transaction that registers a version."""
    cur = conn.execute(
        "DELETE FROM model_versions WHERE device = ? AND version < (SELECT MIN(version) "
        "FROM (SELECT version FROM model_versions WHERE device = ? ORDER BY version DESC "
        "LIMIT ?)) AND version NOT IN (SELECT MAX(version) FROM model_versions "
        "WHERE device = ? AND status = ? GROUP BY task)",
        (device, device, int(keep), device, PROMOTED),
    )
    if cur.rowcount > 0:
        conn.execute(
            "INSERT INTO model_versions_pruned (device, versions) VALUES (?, ?) "
            "ON CONFLICT (device) DO UPDATE SET versions = versions + excluded.versions",
            (device, cur.rowcount),
        )
    return max(cur.rowcount, 0)
