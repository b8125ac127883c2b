"""Gossip messages: a peer's signed claim about its log head, nothing else.

``{"v":2,"session":S,"peer":P,"head":CID,"round":R,"sig":B64}`` as canonical JSON
(sorted keys, no spaces). ``sig`` is the claimed peer's ed25519 signature over
``CLAIM_DOMAIN`` followed by the canonical JSON of the other five fields, so a
claim cannot be forged in another peer's name, nor a signature lifted from an
entry or a ledger binding (each has its own domain). An unsigned claim (format
1) or one whose signature does not verify is rejected before it can reach the
directory. The entry a claim names is still fetched and checked: a genuine
claim only tells others where to look.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass

from gateway.errors import PeerRejected
from gateway.peer.cid import check_cid
from gateway.peer.identity import Identity, check_peer_id, verify

MAX_GOSSIP_BYTES = 512
CLAIM_VERSION = 2
CLAIM_DOMAIN = b"learnae/head-claim/v2\n"
SESSION_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_FIELDS = {"v", "session", "peer", "head", "round", "sig"}


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


def _canonical(doc: dict[str, object]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def claim_message(claim: HeadClaim) -> bytes:
    """The bytes a claim's signature covers."""
    doc = {
        "v": CLAIM_VERSION,
        "session": claim.session,
        "peer": claim.peer,
        "head": claim.head,
        "round": claim.round,
    }
    return CLAIM_DOMAIN + _canonical(doc)


def encode_claim(claim: HeadClaim, identity: Identity) -> bytes:
    """Sign ``claim`` with ``identity`` (which must be the claim's peer) and encode it."""
    if claim.peer != identity.peer_id:
        raise ValueError(f"claim peer {claim.peer!r} is not this identity {identity.peer_id!r}")
    sig = identity.sign(claim_message(claim))
    doc: dict[str, object] = {
        "v": CLAIM_VERSION,
        "session": claim.session,
        "peer": claim.peer,
        "head": claim.head,
        "round": claim.round,
        "sig": base64.b64encode(sig).decode("ascii"),
    }
    return _canonical(doc)


def decode_claim(data: bytes) -> HeadClaim:
    """Parse a gossip message and verify its signature; raise PeerRejected naming the fault."""
    if len(data) > MAX_GOSSIP_BYTES:
        raise PeerRejected(
            "oversized_gossip", f"gossip message of {len(data)} bytes exceeds {MAX_GOSSIP_BYTES}"
        )
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PeerRejected("malformed_gossip", f"gossip is not JSON: {data[:60]!r}") from exc
    if not isinstance(doc, dict):
        raise PeerRejected("malformed_gossip", f"gossip is not an object: {data[:80]!r}")
    if doc.get("v") == 1 and set(doc) == _FIELDS - {"sig"}:
        raise PeerRejected("unsigned_claim", f"unsigned (format 1) claim: {data[:80]!r}")
    if set(doc) != _FIELDS:
        raise PeerRejected("malformed_gossip", f"gossip fields are wrong: {data[:80]!r}")
    if doc["v"] != CLAIM_VERSION:
        raise PeerRejected("unknown_version", f"gossip version {doc['v']!r}")
    session, rnd = doc["session"], doc["round"]
    if not isinstance(session, str) or not SESSION_RE.match(session):
        raise PeerRejected("malformed_gossip", f"gossip session {session!r}")
    if not isinstance(rnd, int) or isinstance(rnd, bool) or not 0 <= rnd < 2**31:
        raise PeerRejected("malformed_gossip", f"gossip round {rnd!r}")
    try:
        claim = HeadClaim(session, check_peer_id(doc["peer"]), check_cid(doc["head"]), rnd)
    except PeerRejected as exc:
        raise PeerRejected("malformed_gossip", str(exc)) from exc
    sig_text = doc["sig"]
    try:
        sig = base64.b64decode(sig_text, validate=True) if isinstance(sig_text, str) else b""
    except (binascii.Error, ValueError):
        sig = b""
    if len(sig) != 64:
        raise PeerRejected("bad_claim_signature",
                           f"claim sig {str(sig_text)[:90]!r} is not 64 bytes")
    try:
        verify(claim.peer, sig, claim_message(claim))
    except PeerRejected as exc:
        raise PeerRejected("bad_claim_signature", f"claim for round {rnd}: {exc}") from exc
    return claim
