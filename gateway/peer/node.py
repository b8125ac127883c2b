"""The round loop of one peer: train, publish, gossip, fetch, validate, fuse. No coordinator.

``PeerNode.run_round()`` does one round synchronously (experiments step nodes
directly); ``start()`` runs rounds on a background thread, re-announcing the
head every ``announce_interval_s`` meanwhile; ``stop()`` ends it. A peer fuses
at most ``fuse_peers`` other peers per round, the freshest with some
randomness, so its cost per round does not grow with the network. A peer that
does not answer costs one fetch timeout and is skipped for that round.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from prometheus_client import CollectorRegistry

from gateway.config import PeerSection
from gateway.errors import ContentStoreError, PeerError, PeerRejected, TransportError
from gateway.peer.directory import PeerDirectory, PeerInfo, PeerRecord
from gateway.peer.entry import Entry, decode_entry, sign_entry
from gateway.peer.fusion import STRATEGIES, staleness_discount
from gateway.peer.gossip import (
    SESSION_RE,
    HeadClaim,
    decode_claim,
    encode_claim,
    shard_of,
    topic_for,
)
from gateway.peer.identity import Identity
from gateway.peer.ledgers import Ledger, LedgerLink, LedgerMetrics, NoLedger
from gateway.peer.metrics import PeerMetrics, short
from gateway.peer.pin_retention import retention_for
from gateway.peer.store import ContentStore
from gateway.peer.trainer import LocalTrainer, Weights
from gateway.peer.transport import Transport
from gateway.peer.weights import decode_weights, encode_weights, validate

log = logging.getLogger(__name__)
STATE_FILE = "peer_state.json"
KEEP_ROUNDS = 1000


@dataclass(frozen=True)
class RoundInfo:
    """One of this peer's own rounds, as the API shows it."""

    round: int
    time: float
    samples: int
    metrics: dict[str, float]
    weights_cid: str
    entry_cid: str
    parents: tuple[str, ...]  # weights CIDs fused into the model this round trained from
    fused_peers: tuple[str, ...]  # peers fused at the end of this round
    fused_weights: tuple[str, ...]  # their weights CIDs: the next entry's parents
    rejected: int  # other peers' models rejected this round


class PeerNode:
    def __init__(
        self,
        *,
        identity: Identity,
        store: ContentStore,
        transport: Transport,
        trainer: LocalTrainer,
        settings: PeerSection | None = None,
        state_dir: Path | None = None,
        registry: CollectorRegistry | None = None,
        seed: int | None = None,
        clock: Callable[[], float] = time.time,
        ledger: Ledger | None = None,
        anchor_every: int = 10,
    ) -> None:
        self.identity = identity
        self.peer_id = identity.peer_id
        self.store = store
        self.transport = transport
        self.trainer = trainer
        self.settings = settings or PeerSection()
        if self.settings.fusion not in STRATEGIES:
            raise PeerError(f"peer.fusion = {self.settings.fusion!r} is not a strategy")
        if not SESSION_RE.match(self.settings.session):
            raise PeerError(
                f"peer.session = {self.settings.session!r} must match [A-Za-z0-9_.-]{{1,64}}"
            )
        if self.settings.gossip_shards > 1 and self.settings.shard_epoch_s <= 0:
            raise PeerError(f"peer.shard_epoch_s = {self.settings.shard_epoch_s!r} must be > 0")
        self.session = self.settings.session
        self.state_dir = state_dir
        self.metrics = PeerMetrics(registry)
        self.clock = clock
        self.rng = random.Random(seed)
        self.directory = PeerDirectory(
            store,
            session=self.session,
            own_peer=self.peer_id,
            metrics=self.metrics,
            fetch_timeout=self.settings.fetch_timeout_s,
            clock=clock,
        )
        # heads from a ledger: every round when it is the transport, else every anchor_every
        self.ledger = LedgerLink(
            ledger or NoLedger(),
            session=self.session,
            own_peer=self.peer_id,
            every_round=self.settings.transport == "ledger",
            anchor_every=anchor_every,
            reject=self.directory.reject,
            metrics=LedgerMetrics(registry),
        )
        self.round = 0
        self.head: str | None = None
        self.weights: Weights | None = None
        self.parents: tuple[str, ...] = ()
        self.history: deque[RoundInfo] = deque(maxlen=KEEP_ROUNDS)
        self.bytes_put = 0
        self.bytes_gossip_out = 0
        self.bytes_gossip_in = 0
        self._cache: dict[str, tuple[str, Weights]] = {}  # peer -> (weights CID, weights)
        self._fused_heads: dict[str, str] = {}  # peer -> entry CID last fused from it
        self._listening: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.retention = retention_for(store, self.settings, state_dir, self.metrics)
        self._restore()
        self.refresh_gossip()

    # --- gossip -------------------------------------------------------------------------

    def _shard_topic(self) -> str:
        shards = self.settings.gossip_shards
        epoch = int(self.clock() // self.settings.shard_epoch_s) if shards > 1 else 0
        return topic_for(self.session, shard_of(self.peer_id, shards, epoch))

    def refresh_gossip(self) -> None:
        """Follow the current epoch's shard (a no-op with one shard)."""
        self._listen(self._shard_topic())

    def _listen(self, topic: str) -> None:
        if topic == self._listening:
            return
        if self._listening is not None:
            self.transport.unsubscribe(self._listening)
        self.transport.subscribe(topic, self._on_gossip)
        self._listening = topic

    def _on_gossip(self, data: bytes) -> None:
        self.bytes_gossip_in += len(data)
        self.metrics.bytes.labels("gossip_in").inc(len(data))
        try:
            claim = decode_claim(data)
        except PeerRejected as exc:
            self.directory.reject("unknown", exc.reason, str(exc))
            return
        self.directory.observe(claim)

    def follow_ledger(self) -> None:
        """Send what waits in the ledger outbox, then take in the heads announced there
        (not when sending just found the ledger unreachable: one wait per tick is enough)."""
        self.ledger.flush()
        if not self.ledger.reachable and self.ledger.outbox:
            return
        for claim in self.ledger.poll():
            self.directory.observe(claim)

    def announce(self) -> None:
        """Gossip this peer's head (again): lost announcements are repaired by repetition.
        The ledger is followed too; with ``transport = "ledger"`` it is the only channel."""
        if self.ledger.active:
            self.follow_ledger()
        if self.head is None or self.settings.transport == "ledger":
            return
        claim = HeadClaim(self.session, self.peer_id, self.head, self.round - 1)
        data = encode_claim(claim, self.identity)
        self.refresh_gossip()
        topic = self._shard_topic()
        try:
            self.transport.publish(topic, data)
        except TransportError as exc:
            log.warning("announcing head on %s failed: %s", topic, exc)
            return
        self.bytes_gossip_out += len(data)
        self.metrics.bytes.labels("gossip_out").inc(len(data))

    # --- persistence of this peer's own head ----------------------------------------------

    def _restore(self) -> None:
        if self.state_dir is None:
            return
        path = self.state_dir / STATE_FILE
        if not path.exists():
            return
        doc = json.loads(path.read_text())
        if doc.get("session") != self.session:
            return
        self.head, self.round = doc["head"], int(doc["round"]) + 1
        try:
            entry = decode_entry(self.store.get(self.head, timeout=self.settings.fetch_timeout_s))
            self.ledger.resume(self.head, entry)  # in case a crash came before it went out
            self.weights = decode_weights(
                self.store.get(entry.weights, timeout=self.settings.fetch_timeout_s),
                max_bytes=4 * self.settings.max_block_bytes,
            )
        except (ContentStoreError, PeerRejected) as exc:
            log.warning(
                "own head %s unreadable (%s); continuing the chain from fresh weights",
                self.head,
                exc,
            )

    def _save(self) -> None:
        if self.state_dir is None:
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        path = self.state_dir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps({"session": self.session, "head": self.head, "round": self.round - 1})
        )
        os.replace(tmp, path)

    # --- one round ----------------------------------------------------------------------

    def run_round(self) -> RoundInfo:
        """Train from the current weights, publish, announce, then fuse other peers' models."""
        self.refresh_gossip()
        if self.weights is None:
            self.weights = self.trainer.initial_weights()
        outcome = self.trainer.train(self.weights)
        trained = outcome.weights
        blob = encode_weights(
            trained, dtype=self.settings.wire_dtype, compress=self.settings.compress
        )
        weights_cid = self.store.put(blob)
        entry = Entry(
            session=self.session,
            peer=self.peer_id,
            round=self.round,
            weights=weights_cid,
            parents=self.parents,
            samples=int(outcome.samples),
            metrics={k: float(v) for k, v in outcome.metrics.items()},
            time=round(self.clock(), 3),
            prev=self.head,
        )
        entry_block = sign_entry(self.identity, entry)
        entry_cid = self.store.put(entry_block)
        if self.retention is None:  # else the retention policy pins them at the round's end
            for cid in (weights_cid, entry_cid):
                try:
                    self.store.pin(cid)
                except ContentStoreError as exc:
                    log.warning("pinning %s failed: %s", cid, exc)
        self.bytes_put += len(blob) + len(entry_block)
        self.metrics.bytes.labels("put").inc(len(blob) + len(entry_block))
        own_round = self.round
        with self._lock:
            self.head, self.round = entry_cid, self.round + 1
        self._save()
        self.ledger.publish(entry_cid, entry)
        self.announce()

        fused, parents, peers, rejected = self._fuse(trained, outcome.samples, own_round)
        info = RoundInfo(
            round=own_round,
            time=entry.time,
            samples=entry.samples,
            metrics=entry.metrics,
            weights_cid=weights_cid,
            entry_cid=entry_cid,
            parents=self.parents,
            fused_peers=peers,
            fused_weights=parents,
            rejected=rejected,
        )
        with self._lock:
            self.weights, self.parents = fused, parents
            self.history.append(info)
        self.metrics.rounds.inc()
        self.metrics.round.set(own_round)
        self._retain(info)
        return info

    def _retain(self, info: RoundInfo) -> None:
        """Pin own recent blocks and the others' heads in use, unpin the rest, GC when due."""
        if self.retention is None:
            return
        in_use = {
            peer: (head, self._cache[peer][0])
            for peer, head in self._fused_heads.items()
            if head and peer in self._cache
        }
        try:
            self.retention.after_round((info.weights_cid, info.entry_cid), in_use)
        except Exception:  # disk bookkeeping must never end the round loop
            log.exception("content store retention failed after round %d", info.round)

    def _choose(self, own_round: int) -> list[PeerRecord]:
        """Up to ``fuse_peers`` of the freshest peers, drawn at random from twice as many."""
        fresh = [
            r
            for r in self.directory.candidates()
            if r.claimed_round >= own_round - self.settings.max_staleness
            and r.claimed_head != self._fused_heads.get(r.peer_id)  # nothing new: no point
        ]
        self.rng.shuffle(fresh)  # random order among equally fresh peers
        fresh.sort(key=lambda r: r.claimed_round, reverse=True)
        k = self.settings.fuse_peers
        pool = fresh[: 2 * k]
        return self.rng.sample(pool, min(k, len(pool)))

    def _fuse(
        self, trained: Weights, samples: int, own_round: int
    ) -> tuple[Weights, tuple[str, ...], tuple[str, ...], int]:
        items: list[tuple[Weights, float]] = [(trained, float(samples))]
        parents: list[str] = []
        peers: list[str] = []
        rejected = 0
        budget = self.settings.walk_budget  # entries behind heads fetched this round, all peers
        for rec in self._choose(own_round):
            before = self.directory.entries_fetched
            entry = self.directory.sync(rec.peer_id, budget=1 + max(budget, 0))
            budget -= max(self.directory.entries_fetched - before - 1, 0)
            if entry is None:
                continue
            staleness = own_round - entry.round
            if staleness > self.settings.max_staleness:
                continue
            try:
                theirs = self._weights_of(rec.peer_id, entry, trained)
            except PeerRejected as exc:
                rejected += 1
                self.directory.reject(rec.peer_id, exc.reason, str(exc))
                continue
            except ContentStoreError as exc:
                self.metrics.fetch_failures.labels(short(rec.peer_id), type(exc).__name__).inc()
                continue
            factor = entry.samples * staleness_discount(
                staleness, self.settings.staleness_half_life
            )
            items.append((theirs, factor))
            self._fused_heads[rec.peer_id] = self.directory.records[rec.peer_id].head or ""
            parents.append(entry.weights)
            peers.append(rec.peer_id)
        self.metrics.fused.inc(len(peers))
        if len(items) == 1:
            return trained, (), (), rejected
        fused = STRATEGIES[self.settings.fusion](items)
        return fused, tuple(parents), tuple(peers), rejected

    def _weights_of(self, peer_id: str, entry: Entry, reference: Weights) -> Weights:
        cached = self._cache.get(peer_id)
        if cached is not None and cached[0] == entry.weights:
            weights = cached[1]
        else:
            blob = self.store.get(entry.weights, timeout=self.settings.fetch_timeout_s)
            self.metrics.bytes.labels("fetched").inc(len(blob))
            weights = decode_weights(blob, max_bytes=4 * self.settings.max_block_bytes)
            self._cache[peer_id] = (entry.weights, weights)
        validate(
            weights, reference, max_norm=self.settings.max_norm, norm_ratio=self.settings.norm_ratio
        )
        return weights

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Run rounds on a background thread until ``stop()``."""
        if self._thread is not None:
            raise PeerError("peer node already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="peer-rounds", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        last_announce = 0.0
        while not self._stop.is_set():
            try:
                self.run_round()
                last_announce = time.monotonic()
            except Exception:
                log.exception("peer round failed; retrying after a pause")
                self._stop.wait(5.0)
            deadline = time.monotonic() + self.settings.round_interval_s
            while not self._stop.is_set() and time.monotonic() < deadline:
                if time.monotonic() - last_announce >= self.settings.announce_interval_s:
                    self.announce()
                    last_announce = time.monotonic()
                self._stop.wait(min(1.0, max(deadline - time.monotonic(), 0)))

    # the stop protocol of every service part (runtime/parts.py); the node's loop is its own
    # (rounds, announcements, a deadline), so it does not reuse PeriodicPart's
    def request_stop(self) -> None:
        """Ask the loop to end at its next check, without waiting (for signal handlers)."""
        self._stop.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the current round and stop; the transport and the store are closed."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        try:
            self.transport.close()
            self.ledger.ledger.close()
        finally:
            self.store.close()

    # --- views for the API ----------------------------------------------------------------

    def peers(self) -> list[PeerInfo]:
        return self.directory.info()

    def rounds(self, limit: int = 100) -> list[RoundInfo]:
        with self._lock:
            return list(self.history)[-limit:]

    def current_weights(self) -> Weights | None:
        with self._lock:
            return None if self.weights is None else dict(self.weights)


def with_overrides(settings: PeerSection, **changes: object) -> PeerSection:
    return replace(settings, **changes)  # type: ignore[arg-type]
