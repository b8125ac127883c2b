"""Gossip messages: a peer's claim about its log head, nothing else.

``{"v":1,"session":S,"peer":P,"head":CID,"round":R}`` as canonical JSON. The
claim is not signed: it only tells others where to look; the entry it names is
signed and checked when fetched, and a claim that does not match the fetched
entry is rejected and counted against the claimed peer.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from gateway.peer.cid import check_cid
from gateway.peer.errors import Rejected
from gateway.peer.identity import check_peer_id

MAX_GOSSIP_BYTES = 512
SESSION_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class HeadClaim:
    session: str
    peer: str
    head: str
    round: int


def topic_for(session: str, shard: int = 0) -> str:
    return f"learnae/v1/{session}/{shard}"


def shard_of(peer_id: str, shards: int, epoch: int = 0) -> int:
    """The gossip shard of a peer during ``epoch``: a hash, so groups are reshuffled every
    epoch and heads reach every peer over a few epochs while each peer hears only about
    ``peers / shards`` announcements per round."""
    if shards <= 1:
        return 0
    digest = hashlib.sha256(f"{peer_id}/{epoch}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards


def encode_claim(claim: HeadClaim) -> bytes:
    doc = {
        "v": 1,
        "session": claim.session,
        "peer": claim.peer,
        "head": claim.head,
        "round": claim.round,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def decode_claim(data: bytes) -> HeadClaim:
    if len(data) > MAX_GOSSIP_BYTES:
        raise Rejected(
            "oversized_gossip", f"gossip message of {len(data)} bytes exceeds {MAX_GOSSIP_BYTES}"
        )
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Rejected("malformed_gossip", f"gossip is not JSON: {data[:60]!r}") from exc
    if not isinstance(doc, dict) or set(doc) != {"v", "session", "peer", "head", "round"}:
        raise Rejected("malformed_gossip", f"gossip fields are wrong: {data[:80]!r}")
    if doc["v"] != 1:
        raise Rejected("unknown_version", f"gossip version {doc['v']!r}")
    session, rnd = doc["session"], doc["round"]
    if not isinstance(session, str) or not SESSION_RE.match(session):
        raise Rejected("malformed_gossip", f"gossip session {session!r}")
    if not isinstance(rnd, int) or isinstance(rnd, bool) or not 0 <= rnd < 2**31:
        raise Rejected("malformed_gossip", f"gossip round {rnd!r}")
    return HeadClaim(session, check_peer_id(doc["peer"]), check_cid(doc["head"]), rnd)
