"""One group commit's worth of changes, gathered by ingest and applied by ``Store.commit``.

Rows are plain tuples in the order the INSERT takes them, so the store hands
them to ``executemany`` without touching each one again in Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# (device key, boot, seq, ts, channel set id, float32 BLOB, anomaly 0/1)
ReadingRow = tuple[int, int, int, float, int, bytes, int]


@dataclass(frozen=True)
class Reject:
    """A payload turned away: kept (truncated) in the quarantine for operators."""

    time: float
    topic: str
    device: str | None
    reason: str
    detail: str
    payload: bytes


@dataclass(frozen=True)
class StatusUpdate:
    time: float
    online: bool
    doc_json: str
    firmware: str | None
    seen: bool = True  # False for a retained status replayed by the broker


@dataclass
class Changes:
    rows: dict[int, list[ReadingRow]] = field(default_factory=dict)
    seen: dict[int, float] = field(default_factory=dict)
    boots: dict[tuple[int, int], float] = field(default_factory=dict)
    statuses: dict[int, StatusUpdate] = field(default_factory=dict)
    rejects: list[Reject] = field(default_factory=list)
    device_rejects: dict[int, int] = field(default_factory=dict)
    # stored payloads with values outside their channel's plausible range (stored as missing):
    # quarantined for operators like a reject, but not counted as rejected
    flagged: list[Reject] = field(default_factory=list)
    implausible: dict[str, int] = field(default_factory=dict)  # channel -> values blanked

    def __bool__(self) -> bool:
        return bool(self.rows or self.seen or self.statuses or self.rejects or self.flagged)

    @property
    def readings(self) -> int:
        return sum(len(r) for r in self.rows.values())


@dataclass
class CommitResult:
    """Per device key: readings inserted and readings that were already stored."""

    inserted: dict[int, int] = field(default_factory=dict)
    duplicates: dict[int, int] = field(default_factory=dict)

    @property
    def total_inserted(self) -> int:
        return sum(self.inserted.values())

    @property
    def total_duplicates(self) -> int:
        return sum(self.duplicates.values())
