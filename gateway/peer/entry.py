"""Log entries: the signed, hash-chained records each peer appends per round.

An entry is canonical JSON (sorted keys, no spaces, UTF-8) of::

    {"v": 1, "session": str, "peer": peer id, "round": int, "weights": CID,
     "parents": [CID, ...], "samples": int, "metrics": {name: number},
     "time": unix seconds, "prev": CID or null, "sig": base64 ed25519 signature}

The signature covers the canonical JSON of every field except ``sig``. The
entry is stored as a block, so its CID commits to the whole chain behind it
through ``prev``: change one byte anywhere and every later CID changes.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import PeerRejected
from gateway.peer.cid import check_cid
from gateway.peer.identity import Identity, check_peer_id, verify

FORMAT_VERSION = 1
MAX_ENTRY_BYTES = 8192
MAX_PARENTS = 32
MAX_METRICS = 16
_SESSION_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_METRIC_RE = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
_FIELDS = {
    "v",
    "session",
    "peer",
    "round",
    "weights",
    "parents",
    "samples",
    "metrics",
    "time",
    "prev",
    "sig",
}


@dataclass(frozen=True)
class Entry:
    session: str
    peer: str
    round: int
    weights: str
    parents: tuple[str, ...]
    samples: int
    metrics: dict[str, float] = field(default_factory=dict)
    time: float = 0.0
    prev: str | None = None
    sig: bytes = b""

    def unsigned(self) -> dict[str, Any]:
        return {
            "v": FORMAT_VERSION,
            "session": self.session,
            "peer": self.peer,
            "round": self.round,
            "weights": self.weights,
            "parents": list(self.parents),
            "samples": self.samples,
            "metrics": dict(self.metrics),
            "time": self.time,
            "prev": self.prev,
        }


def _canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def sign_entry(identity: Identity, entry: Entry) -> bytes:
    """Sign ``entry`` (its ``peer`` must be the identity's) and return the block bytes."""
    if entry.peer != identity.peer_id:
        raise ValueError(f"entry peer {entry.peer!r} is not this identity {identity.peer_id!r}")
    doc = entry.unsigned()
    _check_fields(doc)
    sig = identity.sign(_canonical(doc))
    doc["sig"] = base64.b64encode(sig).decode("ascii")
    data = _canonical(doc)
    if len(data) > MAX_ENTRY_BYTES:
        raise ValueError(f"entry of {len(data)} bytes exceeds {MAX_ENTRY_BYTES}")
    return data


def decode_entry(data: bytes) -> Entry:
    """Parse and verify an entry block; raise PeerRejected naming what is wrong."""
    if len(data) > MAX_ENTRY_BYTES:
        raise PeerRejected("oversized_entry",
                           f"entry of {len(data)} bytes exceeds {MAX_ENTRY_BYTES}")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # also over-long ints and deep nesting
        raise PeerRejected("malformed_entry", f"entry is not UTF-8 JSON: {exc}") from exc
    if not isinstance(doc, dict) or set(doc) != _FIELDS:
        keys = sorted(doc) if isinstance(doc, dict) else type(doc).__name__
        raise PeerRejected("malformed_entry", f"entry fields {keys} are not {sorted(_FIELDS)}")
    sig_text = doc.pop("sig")
    _check_fields(doc)
    try:
        sig = base64.b64decode(sig_text, validate=True) if isinstance(sig_text, str) else b""
    except (binascii.Error, ValueError) as exc:
        raise PeerRejected("bad_signature", f"sig {sig_text!r} is not base64") from exc
    if len(sig) != 64:
        raise PeerRejected("bad_signature", f"sig {sig_text!r} is not a 64-byte ed25519 signature")
    verify(doc["peer"], sig, _canonical(doc))
    return Entry(
        session=doc["session"],
        peer=doc["peer"],
        round=doc["round"],
        weights=doc["weights"],
        parents=tuple(doc["parents"]),
        samples=doc["samples"],
        metrics={k: float(v) for k, v in doc["metrics"].items()},
        time=float(doc["time"]),
        prev=doc["prev"],
        sig=sig,
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    if _is_int(value):  # JSON ints are unbounded: keep them where float() is exact
        return abs(value) <= 2**53  # type: ignore[arg-type]
    return isinstance(value, float) and math.isfinite(value)


def _check_fields(doc: dict[str, Any]) -> None:
    def bad(name: str) -> PeerRejected:
        return PeerRejected("malformed_entry", f"field {name} = {doc.get(name)!r} is invalid")

    if doc.get("v") != FORMAT_VERSION:
        raise PeerRejected("unknown_version", f"entry format version {doc.get('v')!r} is not 1")
    if not isinstance(doc["session"], str) or not _SESSION_RE.match(doc["session"]):
        raise bad("session")
    try:
        check_peer_id(doc["peer"])
        check_cid(doc["weights"])
        if doc["prev"] is not None:
            check_cid(doc["prev"])
    except PeerRejected as exc:
        raise PeerRejected("malformed_entry", str(exc)) from exc
    if not _is_int(doc["round"]) or not 0 <= doc["round"] < 2**31:
        raise bad("round")
    if not _is_int(doc["samples"]) or not 0 <= doc["samples"] < 2**31:
        raise bad("samples")
    parents = doc["parents"]
    if not isinstance(parents, list) or len(parents) > MAX_PARENTS:
        raise bad("parents")
    for parent in parents:
        try:
            check_cid(parent)
        except PeerRejected as exc:
            raise PeerRejected("malformed_entry", f"parent: {exc}") from exc
    metrics = doc["metrics"]
    if not isinstance(metrics, dict) or len(metrics) > MAX_METRICS:
        raise bad("metrics")
    for name, value in metrics.items():
        if not _METRIC_RE.match(name) or not _is_number(value):
            raise PeerRejected("malformed_entry", f"metric {name!r} = {value!r} is invalid")
    if not _is_number(doc["time"]) or doc["time"] < 0:
        raise bad("time")
