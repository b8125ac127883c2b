"""The ``none`` ledger: nothing is announced or read (heads travel by gossip alone)."""

from __future__ import annotations

from collections.abc import Iterator

from gateway.peer.entry import Entry
from gateway.peer.ledgers.base import ORIGIN, Announcement, Position, Receipt


class NoLedger:
    kind = "none"

    def announce(self, entry_cid: str, entry: Entry) -> Receipt:
        return Receipt(kind=self.kind, tx="", position=None)

    def announcements(self, session: str, since: Position = ORIGIN) -> Iterator[Announcement]:
        return iter(())

    def close(self) -> None:
        return None
