"""Pydantic schemas of the HTTP API: what clients receive and send.

Public schemas are separate from the store's dataclasses so the storage layer
can change without changing the HTTP contract (docs/api.md).
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list; ``total`` counts every item, not only this page."""

    items: list[T]
    total: int
    limit: int
    offset: int


class Health(BaseModel):
    status: str = Field(description="`ok`, or `degraded` when a part is not running")
    reason: str | None = Field(default=None,
                               description="why the status is `degraded` (null when `ok`)")
    gateway: str
    version: str
    uptime_s: float
    parts: list[str]
    ingest: dict[str, Any] = Field(default_factory=dict)
    peer_store: dict[str, Any] | None = Field(
        default=None,
        description="content store disk use: bytes, bound (peer.max_store_bytes), over_bound, "
        "pinned blocks, gc runs; null without a peer round yet",
    )


class DevicePublic(BaseModel):
    id: str
    stored: int = Field(description="readings stored for this device")
    boots: int
    last_seen: float | None = Field(description="unix time of the last message")
    online: bool
    firmware: str | None = None
    status: dict[str, Any] = Field(default_factory=dict, description="last status message")
    duplicates: int = 0
    rejected: int = 0


class SamplePublic(BaseModel):
    ts: float
    boot: int
    seq: int
    values: dict[str, float | None]
    anomaly: bool


class SamplesPage(BaseModel):
    device: str
    items: list[SamplePublic] = Field(description="newest first")
    limit: int
    next_before_ts: float | None = Field(
        description="pass as `before_ts` to get the next (older) page; null at the end"
    )


class ConfigAccepted(BaseModel):
    device: str
    topic: str
    bytes: int
    retained: bool = True


class ModelPublic(BaseModel):
    model_config = ConfigDict(extra="allow")

    version: int | str
    device: str | None = None
    created: float | None = None
    task: str | None = None
    samples: int | None = None
    metrics: dict[str, float | None] = Field(default_factory=dict)
    artifacts: dict[str, str] = Field(
        default_factory=dict, description="download path per format (tflite, edge)"
    )


class PeerPublic(BaseModel):
    model_config = ConfigDict(extra="allow")

    peer_id: str
    is_self: bool = False
    last_round: int | None = None
    last_seen: float | None = None
    samples: int | None = None
    metrics: dict[str, float | None] = Field(default_factory=dict)


class PeersPublic(BaseModel):
    enabled: bool
    self_id: str | None = None
    items: list[PeerPublic]


class RoundPublic(BaseModel):
    model_config = ConfigDict(extra="allow")

    peer_id: str
    round: int
    time: float | None = None
    samples: int | None = None
    metrics: dict[str, float | None] = Field(default_factory=dict)
    weights_cid: str | None = None
    entry_cid: str | None = None
    parents: list[str] = Field(default_factory=list)


class QuarantinePublic(BaseModel):
    model_config = ConfigDict(extra="allow")

    topic: str
    reason: str


class Overview(BaseModel):
    """Everything the dashboard header needs in one request (always 200)."""

    status: str
    reason: str | None = Field(default=None, description="why `degraded` (as /healthz)")
    gateway: str
    version: str
    uptime_s: float
    parts: list[str]
    model: ModelPublic | None
    models: list[ModelPublic] = Field(description="latest model of each device")
    peers: PeersPublic


class ErrorDetail(BaseModel):
    """The body of every error answer except validation errors (422, ``HTTPValidationError``)."""

    detail: str = Field(description="what was wrong, naming the offending value")


def _int(lo: int, hi: int, text: str) -> dict[str, Any]:
    return {"type": "integer", "minimum": lo, "maximum": hi, "description": text}


_BOUND = {"anyOf": [{"type": "number", "minimum": -3.3e38, "maximum": 3.3e38}, {"type": "null"}]}

REMOTE_CONFIG_SCHEMA: dict[str, Any] = {
    "title": "RemoteConfig",
    "description": (
        "The keys a device takes at run time (`shared.config.REMOTE_KEYS`), each optional. "
        "The protocol's validator checks them (422, naming the field); it also refuses a "
        "threshold whose low exceeds its high. Thresholds may name only channels the "
        "device has reported (409)."),
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "v": {"type": "integer", "const": 1, "description": "config schema version"},
        "period_ms": _int(0, 86_400_000, "sampling period"),
        "batch_size": _int(1, 255, "readings per published batch"),
        "power_mode": {"type": "string", "enum": ["always_on", "deep_sleep"]},
        "status_every_s": _int(1, 86_400, "seconds between status messages"),
        "thresholds": {
            "type": "object",
            "description": "per channel `[low, high]` (null: no limit); outside it a reading "
                           "is marked as an anomaly on the board",
            "additionalProperties": {"type": "array", "minItems": 2, "maxItems": 2,
                                     "items": _BOUND},
        },
    },
}
INTEGER_KEYS = ("v", "period_ms", "batch_size", "status_every_s")
