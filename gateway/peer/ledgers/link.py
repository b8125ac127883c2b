"""A peer's link to a ledger: its own announcements out, everyone's verified claims in.

Out: ``publish`` announces an entry when the policy says so (every round when
the ledger is the transport, every ``anchor_every`` rounds otherwise). An
announcement the ledger could not take (node unreachable) waits in a bounded
outbox and goes out, in order, on a later ``flush``: training never waits for
the ledger.

In: ``poll`` reads announcements after the last position read and checks each
one before it becomes a head claim:

- fields well formed, else ``malformed_announcement``;
- ``binding`` is the named peer's signature over (chain id, contract, session,
  round, entry CID, sender), else ``bad_binding`` (counted under ``unknown``:
  the named peer did not make it);
- the same (peer, round, entry) in another transaction is ``replayed_announcement``;
- a different entry for the same (peer, session, round) is equivocation: fork
  evidence that is kept, shown and counted against the peer.

The same transaction read twice (after a reorg is re-read) is not a replay.

What is compared is bounded: per peer, the announcements of its newest
``KEEP_ROUNDS`` rounds (far more than a fusion looks back). An announcement of an
older round is no longer a claim and is ignored, so a service that runs for
months holds the same memory as after its first day.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from gateway.errors import LedgerError, LedgerUnavailable, PeerRejected
from gateway.peer.cid import check_cid
from gateway.peer.entry import Entry
from gateway.peer.gossip import SESSION_RE, HeadClaim
from gateway.peer.identity import check_peer_id, verify
from gateway.peer.ledgers.base import ORIGIN, Announcement, Ledger, Position, binding_message
from gateway.peer.ledgers.metrics import LedgerMetrics

log = logging.getLogger(__name__)
KEEP_ANCHORED = 1000
KEEP_EVIDENCE = 64
MAX_OUTBOX = 256
MAX_READ_PER_POLL = 10_000
KEEP_ROUNDS = 256  # per peer: rounds below its newest by more are forgotten

RejectFn = Callable[[str, str, str], None]  # (peer label, reason, message)


@dataclass(frozen=True)
class Anchored:
    """An announcement accepted from the ledger, as the API shows it."""

    peer: str
    round: int
    entry_cid: str
    tx: str
    position: Position
    time: float
    sender: str


@dataclass(frozen=True)
class Equivocation:
    """Two different entries anchored for one (peer, session, round): a fork, signed twice."""

    peer: str
    session: str
    round: int
    first: Anchored
    second: Anchored


class LedgerLink:
    def __init__(
        self,
        ledger: Ledger,
        *,
        session: str,
        own_peer: str,
        every_round: bool,
        anchor_every: int,
        reject: RejectFn,
        metrics: LedgerMetrics,
    ) -> None:
        # arguments checked and kept, as every part of the node does (pin retention the same)
        if anchor_every < 1:
            raise ValueError(f"anchor_every = {anchor_every!r} must be at least 1")
        self.ledger = ledger
        self.session = session
        self.own_peer = own_peer
        self.every_round = every_round
        self.anchor_every = anchor_every
        self.reject = reject
        self.metrics = metrics
        self.position: Position = ORIGIN
        self.outbox: deque[tuple[str, Entry]] = deque()
        self.anchored: deque[Anchored] = deque(maxlen=KEEP_ANCHORED)
        self.evidence: deque[Equivocation] = deque(maxlen=KEEP_EVIDENCE)
        self.forked: set[str] = set()
        self.rejected: dict[str, int] = {}
        self.dropped = 0
        self.reachable = True  # the last call to the ledger got through
        self._by_round: dict[str, dict[int, Anchored]] = {}  # peer -> round -> accepted
        self._txs: dict[str, dict[str, int]] = {}  # peer -> transaction read -> its round
        self._newest: dict[str, int] = {}  # peer -> newest round accepted
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return self.ledger.kind != "none"

    # --- out ----------------------------------------------------------------------------

    def publish(self, entry_cid: str, entry: Entry) -> None:
        """Announce ``entry`` if the policy asks for it this round (queued, then flushed)."""
        if not self.active:
            return
        if not (self.every_round or entry.round % self.anchor_every == 0):
            return
        with self._lock:
            self.outbox.append((entry_cid, entry))
            while len(self.outbox) > MAX_OUTBOX:  # the oldest anchors matter least
                self.outbox.popleft()
                self.dropped += 1
        self.flush()

    def resume(self, entry_cid: str, entry: Entry) -> None:
        """Queue a restored head again without sending yet: if it went out before a crash,
        the adapter knows it (the EVM journal) and does not send it twice."""
        if self.active and (self.every_round or entry.round % self.anchor_every == 0):
            with self._lock:
                self.outbox.append((entry_cid, entry))

    def flush(self) -> int:
        """Send queued announcements in order until one fails; return how many went out."""
        sent = 0
        while True:
            with self._lock:
                if not self.outbox:
                    break
                entry_cid, entry = self.outbox[0]
            try:
                receipt = self.ledger.announce(entry_cid, entry)
            except LedgerUnavailable as exc:  # kept at the head of the queue for later
                self.reachable = False
                self.metrics.announced.labels("failed").inc()
                log.warning("announcing round %d on the ledger failed: %s", entry.round, exc)
                break
            except LedgerError as exc:  # refused for good (reverted, misconfigured): drop it
                self.metrics.announced.labels("refused").inc()
                log.error("ledger refused the announcement of round %d: %s", entry.round, exc)
                with self._lock:
                    if self.outbox and self.outbox[0][0] == entry_cid:
                        self.outbox.popleft()
                        self.dropped += 1
                break
            with self._lock:
                if self.outbox and self.outbox[0][0] == entry_cid:
                    self.outbox.popleft()
            self.reachable = True
            self.metrics.announced.labels("sent").inc()
            self.metrics.gas.inc(receipt.gas_used)
            self.metrics.last_gas.set(receipt.gas_used)
            self.metrics.fees.inc(receipt.fee_wei)
            sent += 1
        self.metrics.pending.set(len(self.outbox))
        return sent

    # --- in -----------------------------------------------------------------------------

    def poll(self) -> list[HeadClaim]:
        """Read new announcements; return the verified claims of other peers, oldest first."""
        if not self.active:
            return []
        claims: list[HeadClaim] = []
        try:
            for count, item in enumerate(self.ledger.announcements(self.session, self.position)):
                self.position = max(self.position, item.position)
                claim = self._accept(item)
                if claim is not None and claim.peer != self.own_peer:
                    claims.append(claim)
                if count + 1 >= MAX_READ_PER_POLL:
                    break
            self.reachable = True
        except LedgerUnavailable as exc:
            self.reachable = False
            log.warning("reading the ledger failed: %s", exc)
        except LedgerError as exc:
            log.warning("reading the ledger failed: %s", exc)
        return claims

    def rewind(self, position: Position) -> None:
        """Read again from after ``position`` (a deeper reorg was detected by the adapter)."""
        self.position = min(self.position, position)

    def _count(self, peer: str, reason: str, message: str) -> None:
        with self._lock:
            self.rejected[reason] = self.rejected.get(reason, 0) + 1
        self.metrics.rejected.labels(reason).inc()
        self.reject(peer, reason, message)

    def _accept(self, item: Announcement) -> HeadClaim | None:
        if item.tx in self._txs.get(item.peer, {}):
            return None  # the same transaction read again
        try:
            if item.session != self.session or not SESSION_RE.match(item.session):
                raise PeerRejected("malformed_announcement", f"session {item.session!r}")
            check_peer_id(item.peer)
            check_cid(item.entry_cid)
            if not 0 <= item.round < 2**31:
                raise PeerRejected("malformed_announcement", f"round {item.round!r}")
        except PeerRejected as exc:
            self._count("unknown", "malformed_announcement", str(exc))
            return None
        message = binding_message(
            item.chain_id, item.contract, item.session, item.round, item.entry_cid, item.sender
        )
        try:
            verify(item.peer, item.binding, message)
        except PeerRejected as exc:
            self._count("unknown", "bad_binding", f"announcement in {item.tx}: {exc}")
            return None
        # every field named, from the announcement read back (the overview builds its
        # response the same way)
        record = Anchored(
            peer=item.peer,
            round=item.round,
            entry_cid=item.entry_cid,
            tx=item.tx,
            position=item.position,
            time=item.time,
            sender=item.sender,
        )
        with self._lock:
            if item.round < self._newest.get(item.peer, 0) - KEEP_ROUNDS:
                return None  # older than anything still compared: not a claim any more
            self._txs.setdefault(item.peer, {})[item.tx] = item.round
            earlier = self._by_round.get(item.peer, {}).get(item.round)
        if earlier is not None and earlier.entry_cid == item.entry_cid:
            self._count(item.peer, "replayed_announcement", f"{item.tx} repeats {earlier.tx}")
            return None
        if earlier is not None:
            with self._lock:
                self.evidence.append(
                    Equivocation(item.peer, item.session, item.round, earlier, record)
                )
                self.forked.add(item.peer)
            self.metrics.equivocations.inc()
            self._count(
                item.peer,
                "equivocation",
                f"round {item.round}: {earlier.entry_cid} ({earlier.tx}) and "
                f"{item.entry_cid} ({item.tx})",
            )
            return None
        with self._lock:
            self._by_round.setdefault(item.peer, {})[item.round] = record
            self.anchored.append(record)
            if item.round > self._newest.get(item.peer, -1):
                self._newest[item.peer] = item.round
                self._forget_before(item.peer, item.round - KEEP_ROUNDS)
        self.metrics.seen.inc()
        return HeadClaim(item.session, item.peer, item.entry_cid, item.round)

    def _forget_before(self, peer: str, oldest: int) -> None:
        """Drop ``peer``'s rounds (and the transactions read for them) below ``oldest``."""
        rounds, txs = self._by_round[peer], self._txs[peer]
        for old in [r for r in rounds if r < oldest]:
            del rounds[old]
        for tx in [t for t, r in txs.items() if r < oldest]:
            del txs[tx]

    def remembered(self) -> int:
        """Announcements and transactions held for comparison (bounded per peer)."""
        with self._lock:
            return sum(map(len, self._by_round.values())) + sum(map(len, self._txs.values()))

    # --- views --------------------------------------------------------------------------

    def anchored_entries(self, limit: int = 100) -> list[Anchored]:
        with self._lock:
            return list(self.anchored)[-limit:]

    def fork_evidence(self) -> list[Equivocation]:
        with self._lock:
            return list(self.evidence)

    def anchored_rounds(self) -> set[str]:
        """Entry CIDs of this peer's own rounds read back from the ledger."""
        with self._lock:
            return {a.entry_cid for a in self.anchored if a.peer == self.own_peer}
