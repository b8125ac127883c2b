"""Heads through a ledger (the in-process one): policy, outbox, and checks on what is read."""

from __future__ import annotations

import numpy as np
import pytest

from gateway.peer import Identity, LocalHub, MemoryStore, PeerNode
from gateway.peer.ledgers import MemoryChain, binding_message
from gateway.peer.ledgers.memory import MEMORY_CHAIN_ID, MEMORY_CONTRACT
from gateway.peer.transport import NullTransport

from .conftest import StepTrainer, make_node


def _value(node: PeerNode) -> float:
    weights = node.current_weights()
    assert weights is not None
    return float(weights["layers.0.bias"][0])


def _ledger_node(
    store: MemoryStore, chain: MemoryChain, name: str, step: float, **changes: object
) -> PeerNode:
    key = Identity.generate()
    changes.setdefault("transport", "ledger")
    return make_node(
        store,
        NullTransport(),
        StepTrainer(step),
        identity=key,
        ledger=chain.endpoint(name, key),
        **changes,
    )


def test_three_peers_find_each_other_through_the_ledger_alone(shared_store: MemoryStore) -> None:
    chain = MemoryChain()
    a, b, c = (
        _ledger_node(shared_store, chain, n, s) for n, s in (("a", 1.0), ("b", 2.0), ("c", 3.0))
    )
    a.run_round()
    b.run_round()
    assert _value(b) == 1.5
    c.run_round()
    assert _value(c) == 2.0
    assert set(c.rounds()[-1].fused_peers) == {a.peer_id, b.peer_id}
    assert [r.round for r in chain.records] == [0, 0, 0]  # one announcement per round
    a.run_round()
    assert {p.peer_id: p.latest_round for p in a.peers()} == {b.peer_id: 0, c.peer_id: 0}
    assert {x.peer for x in a.ledger.anchored_entries()} == {a.peer_id, b.peer_id, c.peer_id}
    assert a.ledger.anchored_rounds() == {info.entry_cid for info in a.rounds()}


def test_other_transports_anchor_every_n_rounds(shared_store: MemoryStore) -> None:
    hub, chain = LocalHub(), MemoryChain()
    key = Identity.generate()
    node = make_node(
        shared_store,
        hub.endpoint("a"),
        identity=key,
        ledger=chain.endpoint("a", key),
        anchor_every=3,
    )
    for _ in range(7):
        node.run_round()
    assert [r.round for r in chain.records] == [0, 3, 6]


def test_forged_replayed_and_equivocating_announcements(shared_store: MemoryStore) -> None:
    chain = MemoryChain()
    a = _ledger_node(shared_store, chain, "a", 1.0)
    b = _ledger_node(shared_store, chain, "b", 2.0)
    a.run_round()
    genuine = chain.records[0]
    mallory = Identity.generate()
    forged_cid = shared_store.put(b"not an entry")
    # forged: a's name, mallory's signature over a claim of round 5
    chain.append(
        session="test",
        peer=a.peer_id,
        rnd=5,
        entry_cid=forged_cid,
        binding=mallory.sign(
            binding_message(MEMORY_CHAIN_ID, MEMORY_CONTRACT, "test", 5, forged_cid, "m")
        ),
        sender="m",
    )
    # a genuine binding lifted and sent from another account no longer binds
    chain.append(
        session="test",
        peer=a.peer_id,
        rnd=0,
        entry_cid=genuine.entry_cid,
        binding=genuine.binding,
        sender="m",
    )
    # replayed by the same account: a second record of the same (peer, round, entry)
    chain.append(
        session="test",
        peer=a.peer_id,
        rnd=0,
        entry_cid=genuine.entry_cid,
        binding=genuine.binding,
        sender="a",
    )
    b.run_round()
    assert b.ledger.rejected == {"bad_binding": 2, "replayed_announcement": 1}
    assert {p.peer_id: p.latest_round for p in b.peers()}[a.peer_id] == 0
    assert b.rounds()[-1].fused_peers == (a.peer_id,)
    # a equivocates: a second, different, properly bound entry for its round 0
    other_cid = shared_store.put(b"another round 0")
    a.ledger.ledger.chain.append(  # type: ignore[attr-defined]
        session="test",
        peer=a.peer_id,
        rnd=0,
        entry_cid=other_cid,
        binding=a.identity.sign(
            binding_message(MEMORY_CHAIN_ID, MEMORY_CONTRACT, "test", 0, other_cid, "a")
        ),
        sender="a",
    )
    b.run_round()
    (evidence,) = b.ledger.fork_evidence()
    assert evidence.peer == a.peer_id and evidence.round == 0
    assert (evidence.first.entry_cid, evidence.second.entry_cid) == (genuine.entry_cid, other_cid)
    assert b.ledger.forked == {a.peer_id}
    peers = {p.peer_id: p for p in b.peers()}
    assert peers[a.peer_id].rejected == {"replayed_announcement": 1, "equivocation": 1}
    assert peers["unknown"].rejected == {"bad_binding": 2}
    registry = b.ledger.metrics.rejected._metrics
    assert sum(m._value.get() for m in registry.values()) == 4


def test_announcements_wait_while_the_ledger_is_unreachable(shared_store: MemoryStore) -> None:
    chain = MemoryChain()
    up = {"a": True, "b": True}
    chain.reachable = lambda name: up[name]
    a = _ledger_node(shared_store, chain, "a", 1.0)
    b = _ledger_node(shared_store, chain, "b", 2.0)
    up["a"] = False
    for _ in range(3):
        a.run_round()  # training goes on
    assert chain.records == [] and len(a.ledger.outbox) == 3
    b.run_round()
    assert b.peers() == []
    up["a"] = True
    a.announce()  # the periodic tick flushes the outbox, in order
    assert [(r.sender, r.round) for r in chain.records] == [("b", 0), ("a", 0), ("a", 1), ("a", 2)]
    assert not a.ledger.outbox
    b.run_round()
    assert {p.peer_id: p.latest_round for p in b.peers()} == {a.peer_id: 2}


@pytest.mark.parametrize("bad", [-1, 2**31])
def test_out_of_range_rounds_are_malformed(shared_store: MemoryStore, bad: int) -> None:
    chain = MemoryChain()
    b = _ledger_node(shared_store, chain, "b", 2.0)
    key = Identity.generate()
    cid = shared_store.put(b"x")
    chain.append(session="test", peer=key.peer_id, rnd=bad, entry_cid=cid, binding=b"", sender="k")
    b.run_round()
    assert b.ledger.rejected == {"malformed_announcement": 1}
    assert np.isfinite(_value(b))


def test_what_is_compared_stays_bounded_and_recent_forks_are_still_caught(
    shared_store: MemoryStore,
) -> None:
    from gateway.peer.ledgers.link import KEEP_ROUNDS

    chain = MemoryChain()
    b = _ledger_node(shared_store, chain, "b", 2.0)
    a = Identity.generate()

    def announce(rnd: int, payload: bytes) -> str:
        cid = shared_store.put(payload)
        chain.append(session="test", peer=a.peer_id, rnd=rnd, entry_cid=cid, sender="a",
                     binding=a.sign(binding_message(MEMORY_CHAIN_ID, MEMORY_CONTRACT, "test",
                                                    rnd, cid, "a")))
        return cid

    rounds = 4 * KEEP_ROUNDS
    for rnd in range(rounds):
        announce(rnd, b"round %d" % rnd)
    b.ledger.poll()
    assert b.ledger.rejected == {}
    # one announcement and one transaction per remembered round, the newest KEEP_ROUNDS + 1
    assert b.ledger.remembered() == 2 * (KEEP_ROUNDS + 1)
    # a fork of a recent round is still evidence; one of a forgotten round is not a claim
    announce(rounds - 2, b"a second entry for a recent round")
    announce(5, b"a second entry for an old round")
    claims = b.ledger.poll()
    assert claims == []
    assert b.ledger.rejected == {"equivocation": 1}
    (evidence,) = b.ledger.fork_evidence()
    assert evidence.round == rounds - 2
    assert b.ledger.remembered() <= 2 * (KEEP_ROUNDS + 1) + 1
