"""An in-process ledger with the port's full behaviour, for experiments and unit tests.

``MemoryChain`` is one ordered record shared by several ``MemoryLedger``
endpoints (one per peer), like ``LocalHub`` for gossip. Each announcement gets
the next sequence number as its position and the chain clock's time; bindings
are made and checked exactly as on a real chain (chain id 0, contract
``"memory"``, the endpoint's name as sender). ``reachable(name)`` decides
whether an endpoint can reach the chain: an offline peer can neither announce
nor read, and catches up from its last position when back.

What it does not model: fees, confirmations, reorgs, unavailability of a real
node. The anvil tests cover those on the ``iota-evm`` adapter.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

from gateway.errors import LedgerUnavailable
from gateway.peer.entry import Entry
from gateway.peer.identity import Identity
from gateway.peer.ledgers.base import ORIGIN, Announcement, Position, Receipt, binding_message

MEMORY_CHAIN_ID = 0
MEMORY_CONTRACT = "memory"


class MemoryChain:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.reachable: Callable[[str], bool] = lambda name: True
        self.records: list[Announcement] = []
        self._lock = threading.Lock()

    def endpoint(self, name: str, identity: Identity) -> MemoryLedger:
        return MemoryLedger(self, name, identity)

    def append(
        self, *, session: str, peer: str, rnd: int, entry_cid: str, binding: bytes, sender: str
    ) -> Announcement:
        """Record an announcement as given (tests use this to forge and replay)."""
        with self._lock:
            seq = len(self.records)
            record = Announcement(
                session=session,
                peer=peer,
                round=rnd,
                entry_cid=entry_cid,
                binding=binding,
                sender=sender,
                chain_id=MEMORY_CHAIN_ID,
                contract=MEMORY_CONTRACT,
                position=(seq, 0),
                time=self.clock(),
                tx=f"memory:{seq}",
            )
            self.records.append(record)
        return record


class MemoryLedger:
    """One peer's endpoint on a MemoryChain."""

    kind = "memory"

    def __init__(self, chain: MemoryChain, name: str, identity: Identity) -> None:
        self.chain, self.name, self.identity = chain, name, identity
        self.announced = 0

    def _check_reachable(self) -> None:
        if not self.chain.reachable(self.name):
            raise LedgerUnavailable(f"in-process ledger unreachable from {self.name!r}")

    def announce(self, entry_cid: str, entry: Entry) -> Receipt:
        self._check_reachable()
        message = binding_message(
            MEMORY_CHAIN_ID, MEMORY_CONTRACT, entry.session, entry.round, entry_cid, self.name
        )
        record = self.chain.append(
            session=entry.session,
            peer=entry.peer,
            rnd=entry.round,
            entry_cid=entry_cid,
            binding=self.identity.sign(message),
            sender=self.name,
        )
        self.announced += 1
        return Receipt(kind=self.kind, tx=record.tx, position=record.position)

    def announcements(self, session: str, since: Position = ORIGIN) -> Iterator[Announcement]:
        self._check_reachable()
        with self.chain._lock:
            start = max(since[0] + 1, 0)
            records = self.chain.records[start:]
        return (r for r in records if r.session == session)

    def close(self) -> None:
        return None
