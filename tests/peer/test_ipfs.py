"""The peer layer over real kubo daemons on loopback (RPC API, bitswap, pubsub)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import partial

import pytest
from ipfs_rig import KuboNode, Rig, connected_rig, inet_sockets
from prometheus_client import CollectorRegistry

from gateway.peer import (
    BlockNotFound,
    BlockTooLarge,
    ContentStoreUnavailable,
    Identity,
    IpfsPubsubTransport,
    IpfsRpc,
    IpfsStore,
    PeerNode,
    TransportError,
    cid_of,
    decode_entry,
)
from gateway.peer.gossip import topic_for
from gateway.peer.ipfs import PINSET_NAME, multibase_encode
from gateway.peer.transport import Handler

from .conftest import SETTINGS, StepTrainer

pytestmark = [pytest.mark.ipfs, pytest.mark.timeout(180)]


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    yield from connected_rig(("a", "b", "c"))


def wait_until(condition: Callable[[], bool], timeout: float = 20.0, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def store_of(node: KuboNode, **kwargs: object) -> IpfsStore:
    return IpfsStore(IpfsRpc(node.api_url, timeout=10.0), **kwargs)  # type: ignore[arg-type]


class DroppingTransport:
    """Pubsub whose incoming messages are thrown away while ``drop`` is set."""

    def __init__(self, inner: IpfsPubsubTransport) -> None:
        self.inner = inner
        self.drop = False
        self.dropped = 0

    def publish(self, topic: str, data: bytes) -> None:
        self.inner.publish(topic, data)

    def subscribe(self, topic: str, handler: Handler) -> None:
        def maybe(data: bytes) -> None:
            if self.drop:
                self.dropped += 1
            else:
                handler(data)

        self.inner.subscribe(topic, maybe)

    def unsubscribe(self, topic: str) -> None:
        self.inner.unsubscribe(topic)

    def close(self) -> None:
        self.inner.close()


def peer_node(
    node: KuboNode, session: str, step: float, transport: object = None, timeout: float = 3.0
) -> PeerNode:
    return PeerNode(
        identity=Identity.generate(),
        store=store_of(node, get_timeout=timeout),
        transport=transport or IpfsPubsubTransport(node.api_url),  # type: ignore[arg-type]
        trainer=StepTrainer(step),
        settings=replace(SETTINGS, session=session, fetch_timeout_s=timeout),
        registry=CollectorRegistry(),
        seed=1,
    )


def subscribed(nodes: list[PeerNode], session: str) -> None:
    """Wait until every node's stream is open and its IPFS node sees the others on the topic."""
    topic = topic_for(session)
    arg = multibase_encode(topic.encode())
    for node in nodes:
        transport = getattr(node.transport, "inner", node.transport)
        assert wait_until(partial(transport.connected, topic)), "subscription did not open"
    for node in nodes:
        rpc = node.store.rpc  # type: ignore[attr-defined]

        def enough(rpc: IpfsRpc = rpc) -> bool:
            peers = rpc.call("pubsub/peers", {"arg": arg}).json()
            return len(peers.get("Strings") or []) >= len(nodes) - 1

        assert wait_until(enough), "pubsub peers did not see each other"


def test_store_names_blocks_like_the_local_store_and_moves_them(rig: Rig) -> None:
    """kubo: bitswap fetches a block from a connected peer; ``block/get`` with ``timeout``
    gives up on a block nobody has; a refused connection is a transport error."""
    a, b = rig.nodes[0], rig.nodes[1]
    store_a, store_b = store_of(a), store_of(b, max_block_bytes=64)
    cid = store_a.put(b"hello")
    assert cid == cid_of(b"hello") == "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq"
    store_a.pin(cid)
    assert store_b.get(cid, timeout=10) == b"hello"  # fetched from a over bitswap
    started = time.monotonic()
    with pytest.raises(BlockNotFound):
        store_b.get(cid_of(b"nobody has this"), timeout=1.0)
    assert time.monotonic() - started < 8
    with pytest.raises(BlockTooLarge):
        store_b.put(b"x" * 65)
    dead = IpfsStore(IpfsRpc("http://127.0.0.1:9", retries=0))
    with pytest.raises(ContentStoreUnavailable, match=r"127\.0\.0\.1:9"):
        dead.put(b"hello")


def test_running_nodes_listen_on_and_connect_to_loopback_only(rig: Rig) -> None:
    """From /proc/net/{tcp,tcp6,udp,udp6}: every socket of every daemon is 127.0.0.1.

    kubo behaviour relied on: it listens only on ``Addresses.Swarm/API/Gateway`` and,
    with Bootstrap, MDNS, routing, AutoNAT and relays off, dials only peers it is told.
    """
    store_of(rig.nodes[0]).put(b"traffic")  # the nodes have talked (swarm + bitswap)
    for node in rig.nodes:
        assert node.process is not None
        sockets = inet_sockets(node.process.pid)
        listening = {local[1] for table, local, remote in sockets if remote == ("0.0.0.0", 0)}
        assert {node.swarm_port, node.api_port, node.gateway_port} <= listening
        connected = [(local, remote) for _, local, remote in sockets if remote[1] != 0]
        assert connected, f"{node.name} holds no connection: the check would prove nothing"
        for table, local, remote in sockets:
            assert table == "tcp", f"{node.name}: {table} socket {local} -> {remote}"
            assert local[0] == "127.0.0.1", f"{node.name} listens on {local}"
            assert remote[0] in ("127.0.0.1", "0.0.0.0"), f"{node.name} dials {remote}"
        others = {n.swarm_port for n in rig.nodes if n is not node}
        assert others & {remote[1] for _, remote in connected} or any(
            local[1] == node.swarm_port for local, _ in connected
        )


def test_three_gateways_exchange_entries_and_weights_and_fuse(rig: Rig) -> None:
    """kubo: gossipsub delivers ``pubsub/pub`` to every subscriber of the topic on connected
    nodes (``pubsub/peers`` lists them once the mesh is formed); bitswap moves the blocks."""
    nodes = [peer_node(n, "trio", s) for n, s in zip(rig.nodes, (1.0, 2.0, 3.0), strict=True)]
    try:
        subscribed(nodes, "trio")
        for node in nodes:
            node.run_round()

        def everyone_fused_everyone() -> bool:
            for node in nodes:
                node.announce()
            time.sleep(0.3)
            for node in nodes:
                node.run_round()
            return all(len(n.rounds()[-1].fused_peers) == 2 for n in nodes)

        assert wait_until(everyone_fused_everyone, timeout=60, step=0)
        ids = {n.peer_id for n in nodes}
        for node in nodes:
            last = node.rounds()[-1]
            assert set(last.fused_peers) == ids - {node.peer_id}
            known = {p.peer_id: p for p in node.peers()}
            assert set(known) == ids - {node.peer_id}
            assert all(p.rejected == {} and p.latest_round is not None for p in known.values())
        # a's next entry names as parents exactly the weights it fused, which b and c published
        a = nodes[0]
        fused_from = a.rounds()[-1]
        a.run_round()
        entry = decode_entry(a.store.get(a.rounds()[-1].entry_cid))
        assert entry.parents == fused_from.fused_weights
        published = {r.weights_cid for n in nodes[1:] for r in n.rounds()}
        assert len(entry.parents) == 2 and set(entry.parents) <= published
    finally:
        for node in nodes:
            node.stop()


def test_dropped_gossip_heals_by_walking_prev(rig: Rig) -> None:
    """kubo: blocks stay fetchable over bitswap after the gossip naming them was lost."""
    a = peer_node(rig.nodes[0], "drops", 1.0)
    lossy = DroppingTransport(IpfsPubsubTransport(rig.nodes[1].api_url))
    b = peer_node(rig.nodes[1], "drops", 1.0, transport=lossy)
    try:
        subscribed([a, b], "drops")
        lossy.drop = True
        for _ in range(4):
            a.run_round()
        assert wait_until(lambda: lossy.dropped >= 4)
        lossy.drop = False
        assert b.peers() == []
        assert wait_until(lambda: (a.announce(), bool(b.peers()))[1], step=0.3)
        b.run_round()
        (known,) = b.peers()
        assert known.latest_round == 3
        assert known.entries_verified == 4  # rounds 0..2 were never announced to b
        assert b.rounds()[-1].fused_peers == (a.peer_id,)
    finally:
        a.stop()
        b.stop()


def test_a_node_stopped_and_restarted_catches_up(rig: Rig) -> None:
    """kubo: a daemon stopped and started on the same repository keeps its peer id and
    blocks; the RPC refuses connections meanwhile; ``pubsub/sub`` can be re-opened."""
    a, b, c = (peer_node(n, "restart", 1.0, timeout=1.0) for n in rig.nodes)
    try:
        subscribed([a, b, c], "restart")
        for node in (a, b, c):
            node.run_round()
        rig.nodes[2].stop()  # c's IPFS node goes away
        for _ in range(3):
            a.run_round()
            b.run_round()
        with pytest.raises(ContentStoreUnavailable):
            c.run_round()  # c cannot publish while its node is down
        rig.nodes[2].start()
        rig.nodes[2].connect(rig.nodes[0])
        rig.nodes[2].connect(rig.nodes[1])
        topic = topic_for("restart")
        assert wait_until(lambda: c.transport.connected(topic), timeout=30)  # type: ignore[attr-defined]

        def caught_up() -> bool:
            a.announce()
            b.announce()
            time.sleep(0.3)
            known = {p.peer_id: p for p in c.peers()}
            return all(known.get(x.peer_id) and known[x.peer_id].claimed_round == 3 for x in (a, b))

        assert wait_until(caught_up, timeout=60, step=0)
        c.run_round()
        known = {p.peer_id: p for p in c.peers()}
        for other in (a, b):
            assert known[other.peer_id].latest_round == 3
            assert known[other.peer_id].entries_verified == 4
        assert set(c.rounds()[-1].fused_peers) == {a.peer_id, b.peer_id}
    finally:
        for node in (a, b, c):
            node.stop()


def test_kubo_stores_raw_blocks_under_our_cid_and_pins_them(rig: Rig) -> None:
    """kubo: ``block/put?cid-codec=raw&mhtype=sha2-256&pin=false`` keys the block under the
    CID computed here; ``pin/add`` pins it; ``pin/ls?type=all`` lists it."""
    store = store_of(rig.nodes[0])
    data = b"\x00\xffweights" * 100
    cid = store.put(data)
    assert cid == cid_of(data)
    stat = rig.nodes[0].rpc("block/stat", arg=cid)
    assert stat == {"Key": cid, "Size": len(data)}
    assert cid not in store.pinned()  # what stays is the retention policy's call
    store.pin(cid)
    assert cid in store.pinned()


def test_get_stops_reading_at_the_size_bound(rig: Rig) -> None:
    """kubo streams ``block/get`` chunked, without a length: the bound is applied while reading."""
    big = bytes(range(256)) * 1024  # 256 KiB
    cid = store_of(rig.nodes[0]).put(big)
    small = store_of(rig.nodes[1], max_block_bytes=1000)
    with pytest.raises(BlockTooLarge, match=rf"{cid}.*more than 1000 bytes \(stopped reading"):
        small.get(cid, timeout=10)
    assert store_of(rig.nodes[1]).get(cid, timeout=10) == big


def test_errors_and_timeouts_name_the_cid(rig: Rig) -> None:
    """kubo answers 500 ``context deadline exceeded`` when its ``timeout`` expires."""
    store = store_of(rig.nodes[1])
    missing = cid_of(b"no node has this block")
    with pytest.raises(BlockNotFound, match=missing):
        store.get(missing, timeout=0.5)
    with pytest.raises(ContentStoreUnavailable, match=rf"{missing}.*no answer within 0\.5 s"):
        store.rpc.read("block/get", {"arg": missing, "timeout": "20s"}, limit=10, timeout=0.5)
    dead = IpfsStore(IpfsRpc("http://127.0.0.1:9", retries=0))
    with pytest.raises(ContentStoreUnavailable, match=rf"{cid_of(b'x')} at http://127\.0\.0\.1:9"):
        dead.put(b"x")
    with pytest.raises(TransportError, match="'gone/topic'"):
        IpfsPubsubTransport("http://127.0.0.1:9").publish("gone/topic", b"x")


def test_pubsub_carries_any_topic_and_bytes_multibase_encoded(rig: Rig) -> None:
    """kubo: topics and data are multibase on the RPC; ``pubsub/sub`` streams JSON lines."""
    topic, other = "learnae/ü+ /x?", "learnae/other"
    sender = IpfsPubsubTransport(rig.nodes[0].api_url)
    receiver = IpfsPubsubTransport(rig.nodes[1].api_url)
    got: list[bytes] = []
    wrong: list[bytes] = []
    try:
        receiver.subscribe(topic, got.append)
        receiver.subscribe(other, wrong.append)
        assert wait_until(lambda: receiver.connected(topic) and receiver.connected(other))
        arg = multibase_encode(topic.encode())

        def sender_sees_receiver() -> bool:
            peers = sender.rpc.call("pubsub/peers", {"arg": arg}).json()
            return rig.nodes[1].peer_id in (peers.get("Strings") or [])

        assert wait_until(sender_sees_receiver)
        payload = bytes(range(256))
        assert wait_until(lambda: (sender.publish(topic, payload), bool(got))[1], step=0.3)
        assert set(got) == {payload}
        assert wrong == []
    finally:
        sender.close()
        receiver.close()
    assert not receiver.connected(topic)
    assert sender.rpc.closed and receiver.rpc.closed


def test_stopping_a_node_closes_its_http_clients(rig: Rig) -> None:
    node = peer_node(rig.nodes[0], "closing", 1.0)
    node.run_round()
    node.stop()
    assert node.store.rpc.closed  # type: ignore[attr-defined]
    assert node.transport.rpc.closed  # type: ignore[attr-defined]
    with pytest.raises(ContentStoreUnavailable, match="closed"):
        node.store.put(b"after stop")


def test_kubo_keeps_the_own_window_pinned_and_collects_the_rest(rig: Rig) -> None:
    """kubo: ``pin/rm`` then ``repo/gc`` deletes the block; ``refs/local`` lists what is left;
    ``repo/stat`` RepoSize is the disk use."""
    kubo = rig.nodes[2]
    node = PeerNode(
        identity=Identity.generate(),
        store=store_of(kubo),
        transport=IpfsPubsubTransport(kubo.api_url),
        trainer=StepTrainer(7.0),
        settings=replace(SETTINGS, session="retain", keep_rounds=2, gc_interval_s=1e-6),
        registry=CollectorRegistry(),
        seed=1,
    )
    try:
        for _ in range(4):
            node.run_round()
        rounds = node.rounds()
        kept = {cid for r in rounds[2:] for cid in (r.entry_cid, r.weights_cid)}
        gone = {cid for r in rounds[:2] for cid in (r.entry_cid, r.weights_cid)}
        store = node.store
        assert isinstance(store, IpfsStore)
        assert {c for c in store.pinned() if c.startswith("bafk")} >= kept
        assert not {c for c in store.pinned()} & gone
        local = {line["Ref"] for line in store.rpc.lines("refs/local", {"cid-base": "base32"})}
        assert kept <= local and not gone & local
        assert node.retention is not None
        status = node.retention.status()
        assert status.bytes == kubo.repo_size()  # without the repository's path: RepoSize
        measured = IpfsStore(store.rpc, repo_path=kubo.repo)
        assert abs(measured.disk_bytes() - kubo.disk_bytes()) < 64 * 1024
        assert status.gc_runs == 4 and status.removed >= 4
    finally:
        node.stop()


def test_the_policy_pins_through_one_named_pinset_root(rig: Rig) -> None:
    """kubo: ``dag/put`` (dag-json in, dag-cbor stored) links blocks; ``pin/add?name=`` pins
    the root recursively (its links become indirect pins); ``pin/update`` moves it;
    ``pin/ls?names=true`` names it."""
    kubo = rig.nodes[1]
    store = store_of(kubo)
    a, b, c = (store.put(bytes([i]) * 100) for i in (1, 2, 3))
    missing = cid_of(b"a block this repository never had")

    def roots() -> list[dict[str, object]]:
        params = {"type": "recursive", "stream": "true", "names": "true"}
        return [d for d in store.rpc.lines("pin/ls", params) if d.get("Name") == PINSET_NAME]

    started = time.monotonic()
    store.replace_pins({a, b, missing})  # a lost block is left out, not waited for
    assert time.monotonic() - started < 5
    assert {a, b} <= store.pinned() and c not in store.pinned()
    (first,) = roots()
    again = store_of(kubo)  # a gateway restarted: it finds its root and moves it
    again.replace_pins({b, c})
    (second,) = roots()
    assert second["Cid"] != first["Cid"]
    pinned = again.pinned()
    assert {b, c} <= pinned and a not in pinned
    again.replace_pins(set())
    assert not {a, b, c} & again.pinned()
