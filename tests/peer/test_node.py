"""The round loop and the log protocol on the local adapters (in-process hub, UDP)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from gateway.errors import TransportError
from gateway.peer import (
    Identity,
    LocalBlockStore,
    LocalHub,
    MemoryStore,
    PeerNode,
    UdpTransport,
    decode_entry,
    encode_weights,
    sign_entry,
)
from gateway.peer.cid import cid_of
from gateway.peer.gossip import HeadClaim, claim_message, encode_claim, topic_for
from gateway.peer.transport import parse_endpoints

from .conftest import SETTINGS, StepTrainer, make_node


def _value(node: PeerNode) -> float:
    weights = node.current_weights()
    assert weights is not None
    return float(weights["layers.0.bias"][0])


def test_three_peers_exchange_and_fuse(hub: LocalHub, shared_store: MemoryStore) -> None:
    a, b, c = (
        make_node(shared_store, hub.endpoint(n), StepTrainer(s))
        for n, s in (("a", 1.0), ("b", 2.0), ("c", 3.0))
    )
    a.run_round()  # a knows nobody yet: keeps its own 1.0
    assert _value(a) == 1.0
    b.run_round()  # b trained to 2.0, fuses a's 1.0 (equal samples, no staleness discount)
    assert _value(b) == 1.5
    c.run_round()  # c trained to 3.0, fuses a (1.0) and b (2.0)
    assert _value(c) == 2.0
    info = c.rounds()[-1]
    assert set(info.fused_peers) == {a.peer_id, b.peer_id}
    assert info.round == 0 and info.parents == ()
    c.run_round()
    assert set(c.rounds()[-1].parents) == {a.rounds()[0].weights_cid, b.rounds()[0].weights_cid}
    peers = {p.peer_id: p for p in c.peers()}
    assert set(peers) == {a.peer_id, b.peer_id}
    assert peers[a.peer_id].latest_round == 0 and peers[a.peer_id].rejected == {}


def test_entries_form_a_signed_hash_chain(hub: LocalHub, shared_store: MemoryStore) -> None:
    node = make_node(shared_store, hub.endpoint("a"))
    infos = [node.run_round() for _ in range(3)]
    entries = [decode_entry(shared_store.get(i.entry_cid)) for i in infos]
    assert [e.round for e in entries] == [0, 1, 2]
    assert entries[0].prev is None
    assert entries[1].prev == infos[0].entry_cid and entries[2].prev == infos[1].entry_cid
    assert all(e.peer == node.peer_id and e.session == "test" for e in entries)
    assert entries[2].weights == infos[2].weights_cid
    assert entries[0].metrics == {"loss": 1.0}


def test_lost_gossip_heals_by_walking_prev(shared_store: MemoryStore) -> None:
    hub = LocalHub()
    a = make_node(shared_store, hub.endpoint("a"))
    b = make_node(shared_store, hub.endpoint("b"))
    hub.reachable = lambda sender, receiver: False  # every announcement is lost
    for _ in range(4):
        a.run_round()
    b.run_round()
    assert b.peers() == []
    hub.reachable = lambda sender, receiver: True
    a.run_round()  # one announcement gets through: a's round 4
    b.run_round()
    (known,) = b.peers()
    assert known.latest_round == 4
    assert known.entries_verified == 5  # rounds 0..3 fetched by walking prev
    assert known.gaps == 0


def test_walking_is_bounded_and_gaps_are_counted(shared_store: MemoryStore) -> None:
    hub = LocalHub()
    a = make_node(shared_store, hub.endpoint("a"))
    b = make_node(shared_store, hub.endpoint("b"), walk_budget=1)
    hub.reachable = lambda sender, receiver: False
    for _ in range(5):
        a.run_round()
    hub.reachable = lambda sender, receiver: True
    a.announce()
    b.run_round()
    (known,) = b.peers()
    assert known.latest_round == 4 and known.entries_verified == 2 and known.gaps == 1


def _forge(
    identity: Identity, store: MemoryStore, prev: str | None, rnd: int, value: float = 9.0
) -> str:
    from gateway.peer.entry import Entry

    weights = {
        "layers.0.weight": np.full((4, 3), value, np.float32),
        "layers.0.bias": np.full(3, value, np.float32),
    }
    wcid = store.put(encode_weights(weights, dtype="float32"))
    entry = Entry(
        session="test",
        peer=identity.peer_id,
        round=rnd,
        weights=wcid,
        parents=(),
        samples=10,
        metrics={},
        time=1.0,
        prev=prev,
    )
    return store.put(sign_entry(identity, entry))


def _claim(hub: LocalHub, identity: Identity, head: str, rnd: int) -> None:
    """Gossip a claim signed by ``identity`` (which the tests use as the claimed peer)."""
    hub.endpoint("forger").publish(
        topic_for("test"), encode_claim(HeadClaim("test", identity.peer_id, head, rnd), identity)
    )


def _forged_claim(victim: str, head: str, rnd: int, signer: Identity | None) -> bytes:
    """A claim in ``victim``'s name: unsigned (format 1) or signed by another key."""
    doc: dict[str, object] = {"v": 1, "session": "test", "peer": victim, "head": head, "round": rnd}
    if signer is not None:
        doc["v"] = 2
        message = claim_message(HeadClaim("test", victim, head, rnd))
        doc["sig"] = base64.b64encode(signer.sign(message)).decode()
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def test_forged_claims_with_a_high_round_do_not_hide_a_genuine_head(
    hub: LocalHub, shared_store: MemoryStore
) -> None:
    a = make_node(shared_store, hub.endpoint("a"))
    b = make_node(shared_store, hub.endpoint("b"), StepTrainer(1.0))
    a.run_round()
    b.run_round()
    unfetchable = cid_of(b"no such entry")
    forger = hub.endpoint("forger")
    forger.publish(topic_for("test"), _forged_claim(a.peer_id, unfetchable, 1000, None))
    forger.publish(
        topic_for("test"), _forged_claim(a.peer_id, unfetchable, 1001, Identity.generate())
    )
    a.run_round()  # a's genuine claim for round 1
    b.run_round()
    peers = {p.peer_id: p for p in b.peers()}
    assert peers[a.peer_id].latest_round == 1 and peers[a.peer_id].claimed_round == 1
    assert peers["unknown"].rejected == {"unsigned_claim": 1, "bad_claim_signature": 1}
    assert b.rounds()[-1].fused_peers == (a.peer_id,)


def test_an_unfetchable_signed_claim_does_not_hide_later_heads(
    hub: LocalHub, shared_store: MemoryStore
) -> None:
    key = Identity.generate()
    a = make_node(shared_store, hub.endpoint("a"), identity=key)
    b = make_node(shared_store, hub.endpoint("b"), StepTrainer(1.0))
    a.run_round()
    b.run_round()
    _claim(hub, key, cid_of(b"a block that never reached the store"), 1000)
    a.run_round()  # genuine round 1, claimed after the unfetchable round 1000
    b.run_round()
    (known,) = b.peers()
    assert known.latest_round == 1 and known.fetch_failures == 1
    for _ in range(3):  # the unfetchable claim is retried a bounded number of times
        a.run_round()
        b.run_round()
    (known,) = b.peers()
    assert known.latest_round == 4 and known.claimed_round == 4
    assert known.fetch_failures == 3  # then given up


def test_fork_of_a_peers_chain_is_rejected(hub: LocalHub, shared_store: MemoryStore) -> None:
    key = Identity.generate()
    a = make_node(shared_store, hub.endpoint("a"), identity=key)
    b = make_node(shared_store, hub.endpoint("b"), StepTrainer(1.0))
    a.run_round()
    a.run_round()
    b.run_round()
    assert b.peers()[0].latest_round == 1
    first = a.rounds()[0].entry_cid
    fork = _forge(key, shared_store, prev=first, rnd=2)  # a second child of round 0
    _claim(hub, key, fork, 2)
    b.run_round()
    (known,) = b.peers()
    assert known.rejected == {"fork": 1}
    assert known.latest_round == 1 and known.head == a.rounds()[1].entry_cid


def test_bad_signature_wrong_peer_and_claim_mismatch(
    hub: LocalHub, shared_store: MemoryStore
) -> None:
    victim, mallory = Identity.generate(), Identity.generate()
    b = make_node(shared_store, hub.endpoint("b"), StepTrainer(0.0))
    honest = _forge(victim, shared_store, None, 0)
    doc = json.loads(shared_store.get(honest))
    doc["samples"] = 10_000
    tampered = shared_store.put(json.dumps(doc, separators=(",", ":")).encode())
    _claim(hub, victim, tampered, 0)
    b.run_round()
    mallorys = _forge(mallory, shared_store, None, 0)
    _claim(hub, victim, mallorys, 0)  # mallory's entry claimed as the victim's
    b.run_round()
    _claim(hub, victim, honest, 5)  # an honest entry with a false round claim
    b.run_round()
    (known,) = b.peers()
    assert known.rejected == {"bad_signature": 1, "wrong_peer": 1, "claim_mismatch": 1}
    assert known.latest_round is None
    registry = b.metrics.rejected._metrics  # counted in prometheus too
    assert sum(m._value.get() for m in registry.values()) == 3
    assert _value(b) == 0.0  # nothing foreign was fused


def test_nan_oversized_and_wrong_shape_weights_are_rejected(
    hub: LocalHub, shared_store: MemoryStore
) -> None:
    b = make_node(shared_store, hub.endpoint("b"), StepTrainer(1.0))
    b.run_round()
    for value in (np.nan, 1e6):
        key = Identity.generate()
        _claim(hub, key, _forge(key, shared_store, None, 0, value=value), 0)
    key = Identity.generate()
    from gateway.peer.entry import Entry

    odd = shared_store.put(encode_weights({"x": np.ones(2, np.float32)}))
    cid = shared_store.put(sign_entry(key, Entry("test", key.peer_id, 0, odd, (), 10, {}, 1.0)))
    _claim(hub, key, cid, 0)
    b.run_round()
    reasons = sorted(r for p in b.peers() for r in p.rejected)
    assert reasons == ["non_finite", "norm_bound", "shape_mismatch"]
    assert _value(b) == 2.0


def test_vanished_peer_costs_a_failed_fetch_not_a_stall(hub: LocalHub) -> None:
    a_store, b_store = MemoryStore(), MemoryStore()  # b cannot reach a's blocks
    a = make_node(a_store, hub.endpoint("a"))
    b = make_node(b_store, hub.endpoint("b"), StepTrainer(5.0))
    a.run_round()
    b.run_round()
    assert _value(b) == 5.0
    (known,) = b.peers()
    assert known.fetch_failures == 1 and known.latest_round is None


def test_malformed_gossip_is_counted(hub: LocalHub, shared_store: MemoryStore) -> None:
    b = make_node(shared_store, hub.endpoint("b"))
    hub.endpoint("x").publish(topic_for("test"), b"{not json")
    hub.endpoint("x").publish(topic_for("test"), b'{"v":1}')
    (unknown,) = b.peers()
    assert unknown.peer_id == "unknown"
    assert unknown.rejected == {"malformed_gossip": 2}


def test_other_sessions_are_ignored(hub: LocalHub, shared_store: MemoryStore) -> None:
    a = make_node(shared_store, hub.endpoint("a"), session="other")
    b = make_node(shared_store, hub.endpoint("b"))
    a.run_round()
    b.run_round()
    assert b.peers() == [] and _value(b) == 1.0


def test_fusion_is_bounded_to_fuse_peers(hub: LocalHub, shared_store: MemoryStore) -> None:
    others = [make_node(shared_store, hub.endpoint(f"o{i}")) for i in range(6)]
    for node in others:
        node.run_round()
    me = make_node(shared_store, hub.endpoint("me"), fuse_peers=2)
    for node in others:
        node.announce()  # the periodic re-announcement reaches the newcomer
    me.run_round()
    assert len(me.rounds()[-1].fused_peers) == 2
    assert len(me.peers()) == 6


def test_restart_continues_the_same_chain(tmp_path: Path, hub: LocalHub) -> None:
    store = LocalBlockStore(tmp_path / "blocks")
    key = Identity.load_or_create(tmp_path)

    def start() -> PeerNode:
        return PeerNode(
            identity=key,
            store=store,
            transport=hub.endpoint("a"),
            trainer=StepTrainer(1.0),
            settings=SETTINGS,
            state_dir=tmp_path,
            registry=CollectorRegistry(),
        )

    first = start()
    first.run_round()
    first.run_round()
    head = first.rounds()[-1].entry_cid
    second = start()
    info = second.run_round()
    entry = decode_entry(store.get(info.entry_cid))
    assert entry.round == 2 and entry.prev == head
    assert _value(second) == 3.0  # resumed from the weights of round 1


def test_background_loop_starts_and_stops(hub: LocalHub, shared_store: MemoryStore) -> None:
    a = make_node(shared_store, hub.endpoint("a"), round_interval_s=0.05)
    b = make_node(shared_store, hub.endpoint("b"), round_interval_s=0.05)
    a.start()
    b.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (
        any(r.fused_peers for r in a.rounds()) and any(r.fused_peers for r in b.rounds())
    ):
        time.sleep(0.05)
    a.stop()
    b.stop()
    assert any(r.fused_peers == (b.peer_id,) for r in a.rounds())
    assert any(r.fused_peers == (a.peer_id,) for r in b.rounds())
    done = len(a.rounds())
    time.sleep(0.2)
    assert len(a.rounds()) == done


def test_udp_transport_between_loopback_sockets() -> None:
    a = UdpTransport(port=0, peers=[])
    b = UdpTransport(port=0, peers=[a.address])
    a.peers = [b.address]
    got: list[bytes] = []
    a.subscribe("learnae/v1/test/0", got.append)
    try:
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            b.publish("learnae/v1/test/0", b"head")
            time.sleep(0.05)
    finally:
        a.close()
        b.close()
    assert got[0] == b"head"


def test_udp_refuses_non_loopback_endpoints() -> None:
    assert parse_endpoints("127.0.0.1:7401, 127.0.0.1:7402") == [
        ("127.0.0.1", 7401),
        ("127.0.0.1", 7402),
    ]
    for bad in ("10.0.0.2:7401", "example.org:7401", "127.0.0.1"):
        with pytest.raises(TransportError):
            parse_endpoints(bad)
    with pytest.raises(TransportError):
        UdpTransport(port=0, peers=[("192.168.1.5", 7400)])


def test_two_gateway_processes_gossip_over_udp_and_share_a_blockstore(tmp_path: Path) -> None:
    import subprocess
    import sys

    from ipfs_rig import free_port

    ports = [free_port(), free_port()]
    configs = []
    for i, port in enumerate(ports):
        other = ports[1 - i]
        path = tmp_path / f"g{i}.toml"
        path.write_text(
            f'[gateway]\nid = "g{i}"\ndata_dir = "{tmp_path / f"g{i}"}"\n'
            f'[peer]\nenabled = true\nsession = "udp"\nudp_port = {port}\n'
            f'udp_peers = "127.0.0.1:{other}"\nblocks_dir = "{tmp_path / "blocks"}"\n'
            f'wire_dtype = "float32"\nstaleness_half_life = 0.0\n'
            # one process may start many rounds before the other: never too stale to fuse
            "max_staleness = 1000\n"
        )
        configs.append(path)
    repo = Path(__file__).resolve().parents[2]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.peer.udp_peer", str(c), "3", str(i + 1)],
            cwd=repo,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, c in enumerate(configs)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=150)
        assert proc.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert results[0]["fused"] == [results[1]["peer"]]
    assert results[1]["fused"] == [results[0]["peer"]]
    assert (tmp_path / "g0" / "peer_ed25519.pem").exists()
    assert (tmp_path / "g1" / "peer_state.json").exists()


def test_bad_settings_are_refused(hub: LocalHub, shared_store: MemoryStore) -> None:
    from gateway.peer import PeerError

    with pytest.raises(PeerError, match="session"):
        make_node(shared_store, hub.endpoint("a"), session="no spaces/please")
    with pytest.raises(PeerError, match="shard_epoch_s"):
        make_node(shared_store, hub.endpoint("a"), gossip_shards=2, shard_epoch_s=0.0)


def test_a_node_that_fails_to_start_releases_its_gossip_port(tmp_path: Path) -> None:
    from ipfs_rig import free_port

    from gateway.config import config_from_dict
    from gateway.errors import PeerError
    from gateway.peer import build_peer_node

    port = free_port()
    peer = {"enabled": True, "session": "bad session!", "udp_port": port}
    config = config_from_dict({"gateway": {"data_dir": str(tmp_path)}, "peer": peer}, env={})
    with pytest.raises(PeerError, match="'bad session!'"):
        build_peer_node(config, StepTrainer(1.0))
    UdpTransport(port=port, peers=[]).close()  # the port is free again
