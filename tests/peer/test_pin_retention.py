"""The content store stays within its disk: own last keep_rounds pinned, heads in use kept,
the rest unpinned and collected; disk use measured and bounded."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from gateway.config import ConfigError, config_from_dict
from gateway.peer import Identity, LocalBlockStore, LocalHub, PeerNode
from gateway.peer.pin_retention import STATE_FILE

from .conftest import SETTINGS, StepTrainer

POLICY = {"keep_rounds": 2, "gc_interval_s": 1e-6}


def local_node(
    root: Path, hub: LocalHub, name: str, identity: Identity | None = None, **changes: object
) -> PeerNode:
    from dataclasses import replace

    return PeerNode(
        identity=identity or Identity.generate(),
        store=LocalBlockStore(root / "blocks", owner=name, gc_grace_s=0.0),
        transport=hub.endpoint(name),
        trainer=StepTrainer(1.0 if name == "a" else 0.5),  # different weights: no shared blocks
        settings=replace(SETTINGS, **{**POLICY, **changes}),  # type: ignore[arg-type]
        state_dir=root / name,
        registry=CollectorRegistry(),
        seed=0,
    )


def blocks_of(node: PeerNode, index: int) -> set[str]:
    info = node.rounds()[index]
    return {info.entry_cid, info.weights_cid}


def on_disk(root: Path) -> set[str]:
    return {p.name for p in (root / "blocks" / "blocks").iterdir()}


def test_own_window_and_others_heads_in_use_are_kept_the_rest_collected(
    tmp_path: Path, hub: LocalHub
) -> None:
    a = local_node(tmp_path, hub, "a")
    b = local_node(tmp_path, hub, "b")
    a.run_round()
    b.run_round()  # b fuses a's round 0: that head is now in use by b
    assert b.rounds()[-1].fused_peers == (a.peer_id,)
    for _ in range(3):
        a.run_round()  # a's window moves on to rounds 2 and 3
    disk = on_disk(tmp_path)
    assert blocks_of(a, 0) <= disk  # unpinned by a, still pinned by b
    assert not blocks_of(a, 1) & disk  # nobody keeps round 1: collected
    assert blocks_of(a, 2) | blocks_of(a, 3) <= disk
    assert a.retention is not None  # own window, and b's round 0 that a fused
    assert a.retention.pinned == blocks_of(a, 2) | blocks_of(a, 3) | blocks_of(b, 0)
    b.run_round()  # b now uses a's round 3 and lets round 0 go
    (known,) = b.peers()  # round 1 was pruned: b catches up across the gap
    assert (known.latest_round, known.gaps) == (3, 1)
    assert b.rounds()[-1].fused_weights == (a.rounds()[3].weights_cid,)
    a.run_round()
    disk = on_disk(tmp_path)
    assert not blocks_of(a, 0) & disk
    assert blocks_of(b, 0) | blocks_of(b, 1) <= disk  # b's own window
    status = a.retention.status()
    assert status.bytes == sum(p.stat().st_size for p in (tmp_path / "blocks/blocks").iterdir())
    assert status.gc_runs == 5 and status.removed >= 4 and status.error == ""
    gauge = a.metrics.store_bytes._value.get()  # type: ignore[attr-defined]
    assert gauge == status.bytes


def test_the_policy_survives_a_restart(tmp_path: Path, hub: LocalHub) -> None:
    key = Identity.generate()
    a = local_node(tmp_path, hub, "a", identity=key)
    for _ in range(3):
        a.run_round()
    before = blocks_of(a, 1) | blocks_of(a, 2)
    assert (tmp_path / "a" / STATE_FILE).exists()
    again = local_node(tmp_path, hub, "a", identity=key)
    assert again.retention is not None and again.retention.pinned == before
    again.run_round()
    again.run_round()  # rounds 3 and 4: rounds 1 and 2, pinned before the restart, go
    assert not before & on_disk(tmp_path)
    assert again.retention.pinned == blocks_of(again, 0) | blocks_of(again, 1)


def test_disk_above_the_bound_is_reported(tmp_path: Path, hub: LocalHub) -> None:
    a = local_node(tmp_path, hub, "a", max_store_bytes=100)
    a.run_round()
    assert a.retention is not None
    status = a.retention.status()
    assert status.bytes > 100 and status.over_bound
    assert status.as_dict()["over_bound"] is True


@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [
        ("keep_rounds", 0, "peer.keep_rounds = 0"),
        ("gc_interval_s", 0.0, "peer.gc_interval_s = 0.0"),
        ("max_store_bytes", 0, "peer.max_store_bytes = 0"),
        ("keep_rounds", -3, "peer.keep_rounds = -3"),
        ("max_store_bytes", "1GB", "peer.max_store_bytes = '1GB'"),
    ],
)
def test_bad_retention_settings_name_the_value(key: str, value: object, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        config_from_dict({"peer": {key: value}}, env={})


def test_retention_defaults() -> None:
    peer = config_from_dict({}, env={}).peer
    assert (peer.keep_rounds, peer.gc_interval_s, peer.max_store_bytes) == (50, 600.0, 1 << 30)


def test_healthz_and_metrics_show_the_disk_use_and_degrade_above_the_bound(
    tmp_path: Path, hub: LocalHub
) -> None:
    from types import SimpleNamespace

    from fastapi.testclient import TestClient

    from gateway.api.app import create_app
    from gateway.api.deps import ServiceContext, StoreReader
    from gateway.federation import PeerView
    from gateway.store import Store

    config = config_from_dict({"gateway": {"data_dir": str(tmp_path / "gw")}}, env={})
    Store.open(config.db_path).close()
    registry = CollectorRegistry()
    node = local_node(tmp_path, hub, "a", max_store_bytes=10_000)
    node.metrics = type(node.metrics)(registry)  # the metrics the app's registry serves
    node.retention.metrics = node.metrics  # type: ignore[union-attr]
    view = PeerView(SimpleNamespace(node=node, peer_id=node.peer_id))  # type: ignore[arg-type]
    context = ServiceContext(
        config=config,
        token="t",
        store=StoreReader(config.db_path),
        peers=view,
        registry=registry,
        parts=lambda: ["api", "peer"],
    )
    with TestClient(create_app(context)) as client:
        assert client.get("/healthz").json()["peer_store"] is None  # nothing measured yet
        node.run_round()
        healthy = client.get("/healthz")
        assert healthy.status_code == 200
        store = healthy.json()["peer_store"]
        assert 0 < store["bytes"] <= 10_000 and store["bound"] == 10_000
        assert store["over_bound"] is False and store["pinned"] == 2
        text = client.get("/metrics").text
        assert f"learnae_peer_store_bytes {float(store['bytes'])}" in text
        assert "learnae_peer_store_bound_bytes 10000.0" in text
        other = node.store.put(b"x" * 20_000)  # a block pinned outside the policy: kept
        node.store.pin(other)
        node.run_round()
        degraded = client.get("/healthz")
        assert degraded.status_code == 503
        assert "above peer.max_store_bytes = 10000" in degraded.json()["reason"]
    context.store.close()


def test_the_kubo_store_measures_its_repository_when_told_where_it_is(tmp_path: Path) -> None:
    from gateway.peer import IpfsStore, build_store

    (tmp_path / "repo" / "blocks").mkdir(parents=True)
    (tmp_path / "repo" / "blocks" / "b").write_bytes(b"x" * 1234)
    (tmp_path / "repo" / "config").write_bytes(b"{}")
    config = config_from_dict(
        {"peer": {"store": "ipfs", "ipfs_repo": str(tmp_path / "repo")}}, env={}
    )
    store = build_store(config)
    try:
        assert isinstance(store, IpfsStore) and store.repo_path == tmp_path / "repo"
        assert store.disk_bytes() == 1236  # the files, without asking the daemon
    finally:
        store.close()
    assert config_from_dict({}, env={}).peer.ipfs_repo is None
