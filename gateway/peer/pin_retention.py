"""What a peer keeps in its content store (pin retention): pinning and garbage collection.

A gateway's store would otherwise grow by two blocks per own round and two per
fused peer per round, forever. The policy: keep pinned this peer's own last
``keep_rounds`` entries and weights (enough for a peer that was away to catch up
by walking ``prev``) and the heads it currently uses from others (the entry and
weights it last fused from each); unpin everything else it pinned; run the store's
garbage collection every ``gc_interval_s``. Disk use is measured after every round
and compared with ``max_store_bytes``: above it, ``/healthz`` reports degraded.

Only CIDs this policy pinned are ever unpinned (recorded in ``retention.json``
next to the peer state), so gateways that share one local blockstore directory
never unpin each other's blocks.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from gateway.errors import ContentStoreError
from gateway.peer.store import ContentStore

log = logging.getLogger(__name__)
STATE_FILE = "retention.json"


@runtime_checkable
class PrunableStore(ContentStore, Protocol):
    """A ContentStore that can also forget: both real adapters (local, kubo) are one."""

    def unpin(self, cid: str) -> None: ...

    def gc(self) -> int: ...

    def disk_bytes(self) -> int: ...


@dataclass(frozen=True)
class StoreStatus:
    """Disk use of the content store as last measured, for /metrics and /healthz."""

    bytes: int
    bound: int
    pinned: int
    gc_runs: int
    removed: int
    last_gc: float | None
    error: str

    @property
    def over_bound(self) -> bool:
        return self.bytes > self.bound

    # a record as JSON field by field, as the learning records are
    def as_dict(self) -> dict[str, Any]:
        return {
            "bytes": self.bytes,
            "bound": self.bound,
            "over_bound": self.over_bound,
            "pinned": self.pinned,
            "gc_runs": self.gc_runs,
            "removed": self.removed,
            "last_gc": self.last_gc,
            "error": self.error or None,
        }


class Retention:
    """Pins the blocks worth keeping, unpins the rest, and collects garbage on a schedule."""

    def __init__(
        self,
        store: PrunableStore,
        *,
        keep_rounds: int = 50,
        gc_interval_s: float = 600.0,
        max_bytes: int = 1 << 30,
        state_dir: Path | None = None,
        metrics: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # arguments checked and kept, as every part of the node does (LedgerLink the same)
        if keep_rounds < 1:
            raise ValueError(f"keep_rounds = {keep_rounds!r} must be at least 1")
        self.store = store
        self.keep_rounds = keep_rounds
        self.gc_interval_s = gc_interval_s
        self.max_bytes = max_bytes
        self.metrics = metrics
        self.clock = clock
        self.own: deque[tuple[str, ...]] = deque(maxlen=keep_rounds)
        self.others: dict[str, tuple[str, ...]] = {}
        self.pinned: set[str] = set()  # what this policy pinned and has not unpinned
        self.gc_runs = 0
        self.removed = 0
        self.bytes = 0
        self.error = ""
        self._last_gc: float | None = None
        self._last_gc_wall: float | None = None
        self._path = None if state_dir is None else Path(state_dir) / STATE_FILE
        self._load()

    # --- policy -----------------------------------------------------------------------

    def keep(self) -> set[str]:
        return {cid for blocks in self.own for cid in blocks} | {
            cid for blocks in self.others.values() for cid in blocks
        }

    def after_round(self, own: Iterable[str], others: Mapping[str, Iterable[str]]) -> StoreStatus:
        """Record this round's own blocks and the others' in use; apply; GC when due."""
        self.own.append(tuple(own))
        self.others = {peer: tuple(cids) for peer, cids in others.items()}
        self.apply()
        if self._last_gc is None or self.clock() - self._last_gc >= self.gc_interval_s:
            self.collect()
        self.measure()
        return self.status()

    def apply(self) -> None:
        """Pin what is kept, unpin what dropped out (a store may do both in one step)."""
        keep = self.keep()
        replace = getattr(self.store, "replace_pins", None)
        if replace is not None:
            try:
                replace(keep)
                self.pinned = set(keep)
            except ContentStoreError as exc:
                self._failed("pin", exc)
            self._save()
            return
        for cid in sorted(keep - self.pinned):
            try:
                self.store.pin(cid)
                self.pinned.add(cid)
            except ContentStoreError as exc:
                self._failed("pin", exc)
        for cid in sorted(self.pinned - keep):
            try:
                self.store.unpin(cid)
                self.pinned.discard(cid)
            except ContentStoreError as exc:
                self._failed("unpin", exc)
        self._save()

    def collect(self) -> int:
        """The store's garbage collection: every unpinned block goes."""
        self._last_gc = self.clock()
        self._last_gc_wall = time.time()
        try:
            removed = self.store.gc()
        except ContentStoreError as exc:
            self._failed("gc", exc)
            return 0
        self.gc_runs += 1
        self.removed += removed
        if self.metrics is not None:
            self.metrics.gc_runs.inc()
            self.metrics.gc_removed.inc(removed)
        return removed

    def measure(self) -> int:
        try:
            self.bytes = self.store.disk_bytes()
            self.error = ""
        except ContentStoreError as exc:
            self._failed("disk_bytes", exc)
        if self.metrics is not None:
            self.metrics.store_bytes.set(self.bytes)
            self.metrics.store_bound.set(self.max_bytes)
            self.metrics.pinned_blocks.set(len(self.pinned))
        return self.bytes

    def status(self) -> StoreStatus:
        return StoreStatus(
            bytes=self.bytes,
            bound=self.max_bytes,
            pinned=len(self.pinned),
            gc_runs=self.gc_runs,
            removed=self.removed,
            last_gc=self._last_gc_wall,
            error=self.error,
        )

    def _failed(self, op: str, exc: ContentStoreError) -> None:
        self.error = f"{op}: {exc}"
        log.warning("content store %s failed: %s", op, exc)
        if self.metrics is not None:
            self.metrics.store_errors.labels(op).inc()

    # --- state across restarts ----------------------------------------------------------

    def _load(self) -> None:
        if self._path is None or not self._path.exists():
            return
        try:
            doc = json.loads(self._path.read_text())
            own = [tuple(str(c) for c in blocks) for blocks in doc.get("own", [])]
            others = {str(p): tuple(str(c) for c in v) for p, v in doc.get("others", {}).items()}
            pinned = {str(c) for c in doc.get("pinned", [])}
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            log.warning("ignoring unreadable %s: %s", self._path, exc)
            return
        self.own.extend(own[-self.keep_rounds :])
        self.others = others
        self.pinned = pinned

    def _save(self) -> None:
        if self._path is None:
            return
        doc = {"own": list(self.own), "others": self.others, "pinned": sorted(self.pinned)}
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, self._path)


def retention_for(
    store: ContentStore, settings: Any, state_dir: Path | None, metrics: Any
) -> Retention | None:
    """The policy for ``store`` from ``[peer]`` settings; None for a store that cannot forget."""
    if not isinstance(store, PrunableStore):
        return None
    return Retention(
        store,
        keep_rounds=settings.keep_rounds,
        gc_interval_s=settings.gc_interval_s,
        max_bytes=settings.max_store_bytes,
        state_dir=state_dir,
        metrics=metrics,
    )
