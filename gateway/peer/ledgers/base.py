"""The Ledger port: an ordered, public, append-only record of head announcements.

LEARNAE announced each peer's new weights on the IOTA ledger; here a ledger
carries the same head claims as gossip, with the ledger's own order (a
``Position``) and time. ``announce`` records one of this peer's entries and
returns a ``Receipt``; ``announcements(session, since)`` yields what was
recorded after ``since``, oldest first, whoever sent it.

An announcement binds to the peer it names: ``binding`` is that peer's ed25519
signature over ``binding_message`` (chain id, contract, session, round, entry
CID and the ledger account that sent it). Chain id and contract come from the
reader's own configuration, so an announcement copied to another chain or
contract, or re-sent from another account, no longer verifies.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from gateway.peer.entry import Entry

BINDING_DOMAIN = b"learnae/ledger-binding/v1\n"

Position = tuple[int, int]  # (block or sequence number, index within it): totally ordered
ORIGIN: Position = (-1, -1)  # before everything


@dataclass(frozen=True)
class Receipt:
    """What the ledger answered to an announcement."""

    kind: str
    tx: str  # transaction hash (or the in-process sequence number)
    position: Position | None  # where it landed, None when nothing was recorded
    gas_used: int = 0
    fee_wei: int = 0


@dataclass(frozen=True)
class Announcement:
    """One announcement as read back from a ledger (not yet verified)."""

    session: str
    peer: str
    round: int
    entry_cid: str
    binding: bytes
    sender: str  # ledger account that sent it (lowercase 0x address on EVM)
    chain_id: int  # of the reader's configuration, not of the record
    contract: str  # likewise
    position: Position
    time: float  # ledger time (block timestamp), unix seconds
    tx: str


def binding_message(
    chain_id: int, contract: str, session: str, rnd: int, entry_cid: str, sender: str
) -> bytes:
    """The bytes a peer signs to bind a ledger announcement to itself."""
    doc = {
        "chain_id": chain_id,
        "contract": contract.lower(),
        "entry": entry_cid,
        "round": rnd,
        "sender": sender.lower(),
        "session": session,
    }
    return BINDING_DOMAIN + json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


@runtime_checkable
class Ledger(Protocol):
    """Announce this peer's log entries; read everyone's announcements in ledger order."""

    kind: str

    def announce(self, entry_cid: str, entry: Entry) -> Receipt: ...

    def announcements(self, session: str, since: Position = ORIGIN) -> Iterator[Announcement]: ...

    def close(self) -> None: ...
