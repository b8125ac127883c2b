"""Model registry: every trained model version, its metrics, data range and CIDs, in SQLite.

Its tables (``model_versions``, ``model_versions_pruned``) live in the gateway's
database file and are created and migrated with every other table
(``gateway.store.schema``, migration 5); it opens the file like every module does
(``gateway.store.db``). Weights are kept as safetensors bytes so a version can be
reloaded, served, exported or continued later; the peer layer fills in the CIDs once it
has published the weights and the log entry.

Every version has a status: ``promoted`` (it became the device's current model: served by
the API, pushed to boards, used for scoring) or ``rejected`` (the promotion guard found it
no better than persistence or than the current version; ``reason`` says why).

A version's row is large (its metadata holds the detector's per-phase calibration, tens of
kilobytes) and a version is registered every round, so the lookups the service makes on
every pass and every request read the indexes only (``status`` is never NULL and
indexed), and ``register(..., keep=N)`` applies the model-version retention
(``gateway.learning.version_retention``) in the same transaction.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.errors import RegistryError, StoreError
from gateway.learning.mlp import Weights
from gateway.learning.serialize import weights_from_bytes, weights_to_bytes
from gateway.learning.version_retention import prune_versions
from gateway.store.db import connect
from gateway.store.transaction import transaction

PROMOTED, REJECTED = "promoted", "rejected"
BUSY_TIMEOUT_MS = 30_000  # a register waits this long behind another writer


@dataclass(frozen=True)
class ModelVersion:
    version: int
    device: str
    task: str
    created: float
    data_start: float
    data_end: float
    readings: int
    samples: int
    metrics: dict[str, float]
    metadata: dict[str, Any]
    parent_version: int | None
    weights_cid: str | None
    entry_cid: str | None
    weights_blob: bytes
    status: str = PROMOTED
    reason: str | None = None

    @property
    def weights(self) -> Weights:
        return weights_from_bytes(self.weights_blob)


class ModelRegistry:
    """Model versions in SQLite at ``path`` (a file path or ``":memory:"``)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        try:  # the directory is the store's to make: a missing one is an error here
            if self.path != ":memory:" and not Path(self.path).parent.is_dir():
                raise StoreError(f"directory {str(Path(self.path).parent)!r} does not exist")
            self._db = connect(self.path, busy_timeout_ms=BUSY_TIMEOUT_MS)
        except StoreError as exc:
            raise RegistryError(f"cannot open model registry {self.path!r}: {exc}") from exc

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ModelRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def register(
        self,
        device: str,
        task: str,
        weights: Weights,
        metadata: dict[str, Any],
        *,
        metrics: dict[str, float] | None = None,
        parent_version: int | None = None,
        created: float | None = None,
        status: str = PROMOTED,
        reason: str | None = None,
        keep: int = 0,
    ) -> int:
        """Store a new version; returns its number (increasing across all devices).

        ``keep`` > 0: the model-version retention, in the same transaction: only the
        device's newest ``keep`` versions and its current one are kept.
        """
        if status not in (PROMOTED, REJECTED):
            raise ValueError(f"status must be {PROMOTED!r} or {REJECTED!r}, got {status!r}")
        metrics = dict(metrics if metrics is not None else metadata.get("metrics", {}))
        row = (
            device,
            task,
            time.time() if created is None else created,
            float(metadata.get("data_start", 0.0)),
            float(metadata.get("data_end", 0.0)),
            int(metadata.get("readings", 0)),
            int(metadata.get("samples", 0)),
            json.dumps(metrics),
            json.dumps(metadata),
            weights_to_bytes(weights),
            parent_version,
            status,
            reason,
        )
        try:
            with transaction(self._db):
                cur = self._db.execute(
                    "INSERT INTO model_versions (device, task, created, data_start, data_end, "
                    "readings, samples, metrics, metadata, weights, parent_version, status, "
                    "reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    row,
                )
                if keep > 0:
                    prune_versions(self._db, device, keep)
        except sqlite3.Error as exc:
            raise RegistryError(
                f"cannot register model for {device!r} in {self.path!r}: {exc}"
            ) from exc
        return int(cur.lastrowid or 0)

    def set_cids(
        self, version: int, *, weights_cid: str | None = None, entry_cid: str | None = None
    ) -> None:
        """Record where the peer layer published this version."""
        try:
            with transaction(self._db):
                cur = self._db.execute(
                    "UPDATE model_versions SET weights_cid = COALESCE(?, weights_cid), "
                    "entry_cid = COALESCE(?, entry_cid) WHERE version = ?",
                    (weights_cid, entry_cid, version),
                )
        except sqlite3.Error as exc:
            raise RegistryError(f"cannot set CIDs of version {version}: {exc}") from exc
        if cur.rowcount == 0:
            raise KeyError(f"no model version {version!r}")

    _COLUMNS = (
        "version, device, task, created, data_start, data_end, readings, samples, metrics, "
        "metadata, parent_version, weights_cid, entry_cid, weights, status, reason"
    )

    def _rows(self, where: str, params: tuple[Any, ...]) -> list[ModelVersion]:
        try:
            rows = self._db.execute(
                f"SELECT {self._COLUMNS} FROM model_versions {where}", params
            ).fetchall()
        except sqlite3.Error as exc:
            raise RegistryError(f"cannot read model registry {self.path!r}: {exc}") from exc
        return [
            ModelVersion(
                version=r[0],
                device=r[1],
                task=r[2],
                created=r[3],
                data_start=r[4],
                data_end=r[5],
                readings=r[6],
                samples=r[7],
                metrics=json.loads(r[8]),
                metadata=json.loads(r[9]),
                parent_version=r[10],
                weights_cid=r[11],
                entry_cid=r[12],
                weights_blob=bytes(r[13]),
                status=r[14] or PROMOTED,
                reason=r[15],
            )
            for r in rows
        ]

    def get(self, version: int) -> ModelVersion:
        rows = self._rows("WHERE version = ?", (version,))
        if not rows:
            raise KeyError(f"no model version {version!r}")
        return rows[0]

    def latest(self, device: str, task: str = "forecast") -> ModelVersion | None:
        """The newest version of any status (the last training attempt that produced one)."""
        number = self.latest_version(device, task)
        return None if number is None else self.get(number)

    def latest_version(self, device: str, task: str = "forecast") -> int | None:
        """The number of ``latest(device, task)``, from an index alone."""
        number = self._scalar("SELECT MAX(version) FROM model_versions WHERE device = ? AND "
                              "task = ?", (device, task))
        return None if number is None else int(number)

    def current(self, device: str, task: str = "forecast") -> ModelVersion | None:
        """The device's current model: its newest promoted version."""
        number = self.current_version(device, task)
        return None if number is None else self.get(number)

    def current_version(self, device: str, task: str = "forecast") -> int | None:
        """The number of ``current(device, task)``, read from an index alone: what a loop
        checks on every pass before it decodes a version."""
        number = self._scalar("SELECT MAX(version) FROM model_versions WHERE device = ? AND "
                              "status = ? AND task = ?", (device, PROMOTED, task))
        return None if number is None else int(number)

    def newest_promoted(self, device: str | None = None) -> ModelVersion | None:
        """The newest promoted version (of one device if given), of any task."""
        if device is None:
            number = self._scalar("SELECT MAX(version) FROM model_versions WHERE status = ?",
                                  (PROMOTED,))
        else:  # named: without ANALYZE figures the planner takes the (status, version) one
            number = self._scalar("SELECT MAX(version) FROM model_versions INDEXED BY "
                                  "model_versions_status WHERE device = ? AND status = ?",
                                  (device, PROMOTED))
        return None if number is None else self.get(int(number))

    def device_names(self) -> list[str]:
        """Devices with at least one version (one query: no version is decoded)."""
        try:
            rows = self._db.execute("SELECT DISTINCT device FROM model_versions").fetchall()
        except sqlite3.Error as exc:
            raise RegistryError(f"cannot read model registry {self.path!r}: {exc}") from exc
        return sorted(str(r[0]) for r in rows)

    def newer(self, device: str, version: int, limit: int) -> list[ModelVersion]:
        """``device``'s newest ``limit`` versions after ``version``, oldest first."""
        return self._rows("WHERE device = ? AND version > ? ORDER BY version DESC LIMIT ?",
                          (device, version, max(int(limit), 0)))[::-1]

    def count_newer(self, device: str, version: int) -> int:
        """How many versions ``device`` has after ``version`` (an index count)."""
        return int(self._scalar("SELECT COUNT(*) FROM model_versions WHERE device = ? AND "
                                "version > ?", (device, version)) or 0)

    def recent(self, limit: int) -> list[ModelVersion]:
        """The newest ``limit`` versions, oldest first (the history read in one bounded query)."""
        return self._rows("ORDER BY version DESC LIMIT ?", (max(int(limit), 0),))[::-1]

    def count_up_to(self, device: str, version: int) -> int:
        """How many versions ``device`` has had up to and including ``version``, the pruned
        ones included."""
        kept = self._scalar("SELECT COUNT(*) FROM model_versions WHERE device = ? AND "
                            "version <= ?", (device, version))
        pruned = self._scalar("SELECT versions FROM model_versions_pruned WHERE device = ?",
                              (device,))
        return int(kept or 0) + int(pruned or 0)

    def _scalar(self, sql: str, params: tuple[Any, ...]) -> Any:
        """The first column of the first row (None without one)."""
        try:
            row = self._db.execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            raise RegistryError(f"cannot read model registry {self.path!r}: {exc}") from exc
        return None if row is None else row[0]

    def versions(self, device: str | None = None) -> list[ModelVersion]:
        """All versions (of one device if given), oldest first."""
        if device is None:
            return self._rows("ORDER BY version", ())
        return self._rows("WHERE device = ? ORDER BY version", (device,))
