"""CIDs, the local blockstore, identities and entries."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from gateway.errors import PeerError
from gateway.peer import (
    BlockNotFound,
    BlockTooLarge,
    Entry,
    Identity,
    LocalBlockStore,
    PeerRejected,
)
from gateway.peer.cid import check_cid, cid_of
from gateway.peer.entry import MAX_ENTRY_BYTES, decode_entry, sign_entry


def test_cid_matches_ipfs_raw_cidv1() -> None:
    # `ipfs block put --cid-codec raw` of b"hello" gives this CID (also checked live in test_ipfs)
    assert cid_of(b"hello") == "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"
    assert check_cid(cid_of(b"")) == cid_of(b"")


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "QmRN6wdp1S2A5EtjW9A3M1vKSBuQQGcgvuhoMUoEz4iiT5",
        "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4ye",
        "../../etc/passwd",
        42,
    ],
)
def test_check_cid_rejects_names_that_are_not_raw_cids(bad: object) -> None:
    with pytest.raises(PeerRejected) as info:
        check_cid(bad)
    assert info.value.reason == "bad_cid"


def test_local_store_round_trip_pin_and_errors(tmp_path: Path) -> None:
    store = LocalBlockStore(tmp_path, max_block_bytes=16)
    cid = store.put(b"weights")
    assert cid == cid_of(b"weights")
    assert store.put(b"weights") == cid  # idempotent
    assert store.get(cid) == b"weights"
    store.pin(cid)
    assert (tmp_path / "pins" / cid).exists()
    with pytest.raises(BlockNotFound):
        store.get(cid_of(b"absent"))
    with pytest.raises(BlockNotFound):
        store.get("not-a-cid")
    with pytest.raises(BlockTooLarge):
        store.put(b"x" * 17)
    (tmp_path / "blocks" / cid).write_bytes(b"tampered")
    with pytest.raises(PeerRejected) as info:
        store.get(cid)
    assert info.value.reason == "hash_mismatch"


def test_identity_is_created_once_with_private_permissions(tmp_path: Path) -> None:
    first = Identity.load_or_create(tmp_path)
    key_file = tmp_path / "peer_ed25519.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert Identity.load_or_create(tmp_path).peer_id == first.peer_id
    assert first.peer_id.startswith("p") and len(first.peer_id) == 53
    os.chmod(key_file, 0o644)
    with pytest.raises(PeerError, match="mode 644"):
        Identity.load_or_create(tmp_path)


def _entry(identity: Identity, **changes: object) -> Entry:
    fields: dict[str, object] = dict(
        session="s1",
        peer=identity.peer_id,
        round=3,
        weights=cid_of(b"w"),
        parents=(cid_of(b"a"), cid_of(b"b")),
        samples=120,
        metrics={"loss": 0.25},
        time=1700000000.5,
        prev=cid_of(b"prev"),
    )
    fields.update(changes)
    return Entry(**fields)  # type: ignore[arg-type]


def test_entry_round_trip_keeps_every_field() -> None:
    identity = Identity.generate()
    entry = _entry(identity)
    decoded = decode_entry(sign_entry(identity, entry))
    assert decoded.unsigned() == entry.unsigned()
    assert len(decoded.sig) == 64


def test_tampered_entry_fails_signature() -> None:
    identity = Identity.generate()
    block = sign_entry(identity, _entry(identity))
    doc = json.loads(block)
    doc["samples"] = 1_000_000
    with pytest.raises(PeerRejected) as info:
        decode_entry(json.dumps(doc).encode())
    assert info.value.reason == "bad_signature"


def test_entry_signed_by_another_key_is_rejected() -> None:
    alice, mallory = Identity.generate(), Identity.generate()
    doc = json.loads(sign_entry(mallory, _entry(mallory)))
    doc["peer"] = alice.peer_id  # claim alice's identity with mallory's signature
    with pytest.raises(PeerRejected) as info:
        decode_entry(json.dumps(doc).encode())
    assert info.value.reason == "bad_signature"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"not json", "malformed_entry"),
        (b"[]", "malformed_entry"),
        (b'{"v":1}', "malformed_entry"),
        (b" " * (MAX_ENTRY_BYTES + 1), "oversized_entry"),
        (b"[" * 4000, "malformed_entry"),
        (b'{"v":' + b"9" * 4400 + b"}", "malformed_entry"),
    ],
)
def test_malformed_entries_are_rejected_with_reasons(data: bytes, reason: str) -> None:
    with pytest.raises(PeerRejected) as info:
        decode_entry(data)
    assert info.value.reason == reason


def test_entry_with_bad_field_values_is_rejected() -> None:
    identity = Identity.generate()
    block = sign_entry(identity, _entry(identity))
    for key, value, reason in [
        ("v", 2, "unknown_version"),
        ("round", -1, "malformed_entry"),
        ("metrics", {"loss": "x"}, "malformed_entry"),
        ("parents", ["nope"], "malformed_entry"),
        ("time", 10**400, "malformed_entry"),
        ("metrics", {"loss": -(10**400)}, "malformed_entry"),
    ]:
        doc = json.loads(block)
        doc[key] = value
        with pytest.raises(PeerRejected) as info:
            decode_entry(json.dumps(doc).encode())
        assert info.value.reason == reason, key


def test_public_surface_is_honest() -> None:
    import gateway.peer as peer

    assert sorted(peer.__all__) == sorted(set(peer.__all__))
    assert all(hasattr(peer, name) for name in peer.__all__)
