"""Nothing but log entries and weights leave a peer: every block put and every gossip
message of a small real training network is inspected."""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry

from gateway.config import PeerSection
from gateway.experiments.resilience import ShardTrainer, StudyConfig, load_data
from gateway.learning.mlp import MLPSpec
from gateway.peer import Identity, LocalHub, MemoryStore, PeerNode, decode_entry, decode_weights
from gateway.peer.gossip import decode_claim
from gateway.peer.transport import Handler, Transport


class RecordingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.puts: list[bytes] = []

    def put(self, data: bytes) -> str:
        self.puts.append(bytes(data))
        return super().put(data)


class RecordingTransport:
    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.sent: list[tuple[str, bytes]] = []

    def publish(self, topic: str, data: bytes) -> None:
        self.sent.append((topic, data))
        self.inner.publish(topic, data)

    def subscribe(self, topic: str, handler: Handler) -> None:
        self.inner.subscribe(topic, handler)

    def unsubscribe(self, topic: str) -> None:
        self.inner.unsubscribe(topic)

    def close(self) -> None:
        self.inner.close()


def test_a_peer_publishes_only_entries_and_weights() -> None:
    cfg = StudyConfig(peers=3, rounds=3, epochs=1)
    data = load_data(cfg)
    spec = MLPSpec(sizes=(64, 16, 10), activation="relu", output="softmax")
    store, hub = RecordingStore(), LocalHub()
    transports = [RecordingTransport(hub.endpoint(f"p{i}")) for i in range(3)]
    nodes = [
        PeerNode(
            identity=Identity.generate(),
            store=store,
            transport=transports[i],
            trainer=ShardTrainer(spec, data.x_train[shard], data.y_train[shard], cfg, i),
            settings=PeerSection(session="privacy"),
            registry=CollectorRegistry(),
            seed=i,
        )
        for i, shard in enumerate(data.shards)
    ]
    for _ in range(cfg.rounds):
        for node in nodes:
            node.run_round()
    assert all(len(n.rounds()[-1].fused_peers) == 2 for n in nodes)

    shapes = spec.shapes()
    kinds = {"entry": 0, "weights": 0}
    for block in store.puts:
        if block.startswith(b"{"):
            entry = decode_entry(block)  # signed, schema-checked: no room for extra fields
            assert entry.session == "privacy"
            assert set(entry.metrics) <= {"loss", "accuracy"}
            kinds["entry"] += 1
        else:
            weights = decode_weights(block)
            assert {k: v.shape for k, v in weights.items()} == shapes
            kinds["weights"] += 1
    assert kinds == {"entry": 9, "weights": 9}

    rows = [row.astype(np.float32).tobytes() for row in data.x_train[:200]]
    rows += [row.astype(np.float16).tobytes() for row in data.x_train[:200]]
    for block in store.puts:
        assert not any(row in block for row in rows)

    ids = {n.peer_id for n in nodes}
    for transport in transports:
        assert transport.sent
        for topic, message in transport.sent:
            claim = decode_claim(message)  # exactly {v, session, peer, head, round, sig}, verified
            assert topic == "learnae/v1/privacy/0"
            assert claim.peer in ids and claim.session == "privacy"
            assert store.has(claim.head)
