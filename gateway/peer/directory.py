"""What a peer knows about other peers' logs: claimed heads, verified chains, rejections.

Gossip only sets a peer's *claimed* head. ``sync`` turns a claim into a
verified head by fetching the entry and walking ``prev`` back to the last entry
already verified, so entries whose gossip was lost (or sent during a
partition) are fetched on the way. Walking is bounded per call (``budget``);
when a chain is longer than that, the rest is recorded as a gap rather than
fetched, which keeps the cost per round flat however long a peer was away.

A chain that does not extend the verified head is a fork of that peer's log
and is rejected: a peer signs one history.

A peer keeps up to ``KEEP_CLAIMS`` pending claims per peer (those above its
verified head), not only the highest: a claim whose CID cannot be fetched is
tried again a few times (``MAX_CLAIM_FAILURES``) and meanwhile the next lower
claim is tried, so an unfetchable head, even one genuinely signed, never hides
the rounds after the last verified one.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.errors import BlockNotFound, ContentStoreError, PeerRejected
from gateway.peer.entry import Entry, decode_entry
from gateway.peer.gossip import HeadClaim
from gateway.peer.metrics import PeerMetrics, short
from gateway.peer.store import ContentStore

KEEP_ENTRIES = 64
KEEP_BAD = 64
KEEP_CLAIMS = 8
MAX_CLAIM_FAILURES = 3
TRIES_PER_SYNC = 2


@dataclass
class PeerRecord:
    peer_id: str
    claims: dict[str, int] = field(default_factory=dict)  # pending head CID -> claimed round
    claim_failures: Counter[str] = field(default_factory=Counter)
    last_seen: float = 0.0
    head: str | None = None
    head_entry: Entry | None = None
    chain: OrderedDict[str, Entry] = field(default_factory=OrderedDict)
    bad: OrderedDict[str, str] = field(default_factory=OrderedDict)
    rejected: Counter[str] = field(default_factory=Counter)
    fetch_failures: int = 0
    gaps: int = 0

    @property
    def verified_round(self) -> int:
        return self.head_entry.round if self.head_entry is not None else -1

    @property
    def claimed_head(self) -> str | None:
        """The highest pending claim, else the verified head."""
        if self.claims:
            return max(self.claims.items(), key=lambda item: item[1])[0]
        return self.head

    @property
    def claimed_round(self) -> int:
        return max(self.claims.values()) if self.claims else self.verified_round

    def drop_claim(self, cid: str) -> None:
        self.claims.pop(cid, None)
        self.claim_failures.pop(cid, None)


@dataclass(frozen=True)
class PeerInfo:
    """A known peer as the API shows it."""

    peer_id: str
    latest_round: int | None
    claimed_round: int | None
    last_seen: float
    head: str | None
    entries_verified: int
    rejected: dict[str, int]
    fetch_failures: int
    gaps: int


class PeerDirectory:
    def __init__(
        self,
        store: ContentStore,
        *,
        session: str,
        own_peer: str,
        metrics: PeerMetrics,
        fetch_timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.session = session
        self.own_peer = own_peer
        self.metrics = metrics
        self.fetch_timeout = fetch_timeout
        self.clock = clock
        self.records: dict[str, PeerRecord] = {}
        self.bytes_fetched = 0
        self.entries_fetched = 0
        self._lock = threading.Lock()

    def _record(self, peer_id: str) -> PeerRecord:
        rec = self.records.get(peer_id)
        if rec is None:
            rec = self.records[peer_id] = PeerRecord(peer_id)
            self.metrics.known_peers.set(len(self.records))
        return rec

    def observe(self, claim: HeadClaim) -> None:
        """Take note of a gossiped head claim (cheap: nothing is fetched here)."""
        if claim.peer == self.own_peer or claim.session != self.session:
            return
        with self._lock:
            rec = self._record(claim.peer)
            rec.last_seen = self.clock()
            if claim.head in rec.bad or claim.head in rec.chain or claim.head == rec.head:
                return
            if claim.round <= rec.verified_round:
                return  # older than what is verified: nothing to learn from it
            rec.claims[claim.head] = claim.round
            while len(rec.claims) > KEEP_CLAIMS:  # keep the freshest claims
                rec.drop_claim(min(rec.claims.items(), key=lambda item: item[1])[0])

    def reject(self, peer_id: str, reason: str, message: str = "") -> None:
        with self._lock:
            self._record(peer_id).rejected[reason] += 1
        self.metrics.rejected.labels(short(peer_id), reason).inc()

    def _mark_bad(self, rec: PeerRecord, cid: str, reason: str, message: str) -> None:
        rec.bad[cid] = reason
        while len(rec.bad) > KEEP_BAD:
            rec.bad.popitem(last=False)
        with self._lock:
            rec.drop_claim(cid)  # fall back to the other claims and what was verified
        self.reject(rec.peer_id, reason, message)

    def sync(self, peer_id: str, budget: int = 8) -> Entry | None:
        """Verify ``peer_id``'s freshest claim (walking ``prev`` at most ``budget`` entries);
        return its verified head entry, or None when nothing verified is known.

        A claim whose entry cannot be fetched is kept for a later try and the next
        lower pending claim is tried instead (``TRIES_PER_SYNC`` claims per call).
        """
        rec = self._record(peer_id)
        with self._lock:
            pending = sorted(rec.claims.items(), key=lambda item: item[1], reverse=True)
        for target, claimed_round in pending[:TRIES_PER_SYNC]:
            if self._sync_claim(rec, target, claimed_round, budget) != "unfetchable":
                break
        return rec.head_entry

    def _sync_claim(self, rec: PeerRecord, target: str, claimed_round: int, budget: int) -> str:
        """Try to verify one claim: "verified", "rejected" or "unfetchable"."""
        peer_id = rec.peer_id
        fetched: list[tuple[str, Entry]] = []
        cid: str | None = target
        while cid is not None and cid not in rec.chain and len(fetched) < max(budget, 1):
            try:
                data = self.store.get(cid, timeout=self.fetch_timeout)
            except ContentStoreError as exc:
                rec.fetch_failures += 1
                self.metrics.fetch_failures.labels(short(peer_id), type(exc).__name__).inc()
                if fetched and isinstance(exc, BlockNotFound):
                    break  # history pruned by its owner (keep_rounds): a gap, as when out of budget
                with self._lock:
                    rec.claim_failures[target] += 1
                    if rec.claim_failures[target] >= MAX_CLAIM_FAILURES:
                        rec.drop_claim(target)
                return "unfetchable"
            self.bytes_fetched += len(data)
            self.entries_fetched += 1
            try:
                entry = decode_entry(data)
                self._check_link(peer_id, entry, fetched, claimed_round)
            except PeerRejected as exc:
                self._mark_bad(rec, target, exc.reason, str(exc))
                return "rejected"
            fetched.append((cid, entry))
            cid = entry.prev
        if not fetched:
            with self._lock:
                rec.drop_claim(target)
            return "rejected"
        lowest = fetched[-1][1]
        if rec.head is not None and rec.head_entry is not None:
            joined = cid is not None and cid in rec.chain
            if joined and cid != rec.head:
                self._mark_bad(rec, target, "fork", f"chain branches off at {cid}")
                return "rejected"
            if not joined and (cid is None or lowest.round <= rec.head_entry.round):
                self._mark_bad(rec, target, "fork", f"chain does not contain {rec.head}")
                return "rejected"
            if not joined:
                rec.gaps += 1
        elif cid is not None and cid not in rec.chain:
            rec.gaps += 1
        with self._lock:
            for entry_cid, entry in reversed(fetched):
                rec.chain[entry_cid] = entry
            while len(rec.chain) > KEEP_ENTRIES:
                rec.chain.popitem(last=False)
            rec.head, rec.head_entry = target, fetched[0][1]
            rec.last_seen = max(rec.last_seen, self.clock())
            for cid_, rnd in list(rec.claims.items()):  # claims now behind the verified head
                if rnd <= rec.head_entry.round or cid_ in rec.chain:
                    rec.drop_claim(cid_)
        return "verified"

    def _check_link(
        self, peer_id: str, entry: Entry, fetched: list[tuple[str, Entry]], claimed_round: int
    ) -> None:
        if entry.peer != peer_id:
            raise PeerRejected("wrong_peer",
                               f"entry signed by {entry.peer} was claimed by {peer_id}")
        if entry.session != self.session:
            raise PeerRejected("wrong_session", f"entry of session {entry.session!r}")
        if fetched:
            if entry.round >= fetched[-1][1].round:
                raise PeerRejected("bad_chain",
                                   f"round {entry.round} precedes {fetched[-1][1].round}")
        elif entry.round != claimed_round:
            raise PeerRejected(
                "claim_mismatch", f"gossip claimed round {claimed_round}, entry has {entry.round}"
            )

    def candidates(self) -> list[PeerRecord]:
        with self._lock:
            return [r for r in self.records.values() if r.claims or r.head is not None]

    def info(self) -> list[PeerInfo]:
        with self._lock:
            records = list(self.records.values())
        return [
            PeerInfo(
                peer_id=r.peer_id,
                latest_round=r.head_entry.round if r.head_entry else None,
                claimed_round=r.claimed_round if r.claimed_round >= 0 else None,
                last_seen=r.last_seen,
                head=r.head,
                entries_verified=len(r.chain),
                rejected=dict(r.rejected),
                fetch_failures=r.fetch_failures,
                gaps=r.gaps,
            )
            for r in sorted(records, key=lambda r: r.peer_id)
        ]
