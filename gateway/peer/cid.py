"""CIDv1 for raw blocks, computed in pure Python.

A block's name is ``b`` + base32 (RFC 4648, lowercase, no padding) of
``0x01`` (CID version 1), ``0x55`` (raw codec), ``0x12`` (sha2-256), ``0x20``
(32-byte digest) and the digest. Kubo gives the same string for the
same bytes with ``cid-codec=raw&mhtype=sha2-256&cid-base=base32``, so the local
store and IPFS agree on names without asking each other.
"""

from __future__ import annotations

import base64
import hashlib
import re

from gateway.errors import PeerRejected

_PREFIX = bytes([0x01, 0x55, 0x12, 0x20])
# 36 bytes -> 58 base32 characters after the "b"; the prefix always encodes as "afkrei"
_CID_RE = re.compile(r"^bafkrei[a-z2-7]{52}$")


def cid_of(data: bytes) -> str:
    """The CIDv1 (raw, sha2-256, base32) of ``data``."""
    digest = hashlib.sha256(data).digest()
    return "b" + base64.b32encode(_PREFIX + digest).decode("ascii").lower().rstrip("=")


def digest_of(cid: str) -> bytes:
    """The sha2-256 digest a CID names; raises PeerRejected for anything else."""
    check_cid(cid)
    raw = base64.b32decode(cid[1:].upper() + "======")
    return raw[4:]


def check_cid(cid: object) -> str:
    """Return ``cid`` if it is a raw sha2-256 CIDv1 in base32, else raise PeerRejected."""
    if not isinstance(cid, str) or not _CID_RE.match(cid):
        raise PeerRejected("bad_cid", f"{cid!r} is not a CIDv1 raw sha2-256 base32 name")
    raw = base64.b32decode(cid[1:].upper() + "======")
    if raw[:4] != _PREFIX or len(raw) != 36:
        raise PeerRejected("bad_cid", f"{cid!r} is not a CIDv1 raw sha2-256 base32 name")
    return cid


def verify_block(cid: str, data: bytes) -> None:
    """Raise PeerRejected unless ``data`` hashes to ``cid`` (stores may lie: never trusted)."""
    if cid_of(data) != cid:
        raise PeerRejected("hash_mismatch", f"block returned for {cid} hashes to {cid_of(data)}")
