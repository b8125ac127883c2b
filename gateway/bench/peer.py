"""``bench peer``: three peers on three kubo daemons with short rounds.

Three kubo v0.43.1 daemons on loopback (``gateway.rigs.kubo``: configured and checked
for network safety before they start, connected to each other), and on each a
gateway's peer layer as the service runs it: ``PeerNode`` with the kubo content
store (``IpfsStore``), kubo pubsub gossip (``IpfsPubsubTransport``) and the
retention policy (pin own last ``keep_rounds``, unpin the rest, ``repo/gc`` every
``--gc-interval`` seconds). Each node runs its rounds on its own thread, pausing
``--round-interval`` between them. Local training is replaced by a fixed numpy step
on a forecaster-sized model (a 2-layer MLP, float16 on the wire), so a round's time
is the peer layer's own: publish, gossip, fetch, verify, fuse.

Reported: the time from a peer's publish of weights (its entry's time) to each other
peer's fusion of those weights (the end of the round that fused them), p50 and p99,
also in rounds; how many publications each other peer fused at all (a peer fuses the
freshest, so one that publishes twice between another's rounds is fused once); bytes
per peer per round through kubo (libp2p ``stats/bw``, in + out); and per node the
repository size on disk (its files) after 50 rounds and at the end, and the blocks
pinned; kubo's own ``RepoSize`` is reported beside it (it drifts upwards: ``IpfsStore``).
Goals: p99 publish-to-fusion under 2 rounds; the repository at the end within 2 x its
size after 50 rounds.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

SHAPES = {"layers.0.weight": (24, 32), "layers.0.bias": (32,),
          "layers.1.weight": (32, 3), "layers.1.bias": (3,)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int, default=200, help="rounds per peer")
    parser.add_argument("--round-interval", type=float, default=0.5,
                        help="seconds each peer pauses between rounds")
    parser.add_argument("--keep-rounds", type=int, default=50,
                        help="own rounds kept pinned (peer.keep_rounds)")
    parser.add_argument("--gc-interval", type=float, default=10.0,
                        help="seconds between garbage collections (peer.gc_interval_s)")
    parser.add_argument("--seed", type=int, default=0)


def _say(message: str) -> None:
    print(f"bench peer: {message}", file=sys.stderr, flush=True)


class StepTrainer:
    """A fixed numpy step in place of local training: weights move by seeded noise."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def initial_weights(self) -> dict[str, np.ndarray]:
        init = np.random.default_rng(0)  # every peer of a session starts from the same weights
        return {k: init.normal(0, 0.1, s).astype(np.float32) for k, s in SHAPES.items()}

    def train(self, weights: dict[str, np.ndarray]) -> Any:
        from gateway.peer import TrainOutcome

        out = {k: (v + self.rng.normal(0, 0.01, v.shape)).astype(np.float32)
               for k, v in weights.items()}
        return TrainOutcome(out, 100, {"loss": float(self.rng.random())})


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return float(np.percentile(np.asarray(values), q))


def _bw(node: Any) -> int:
    doc = node.rpc("stats/bw")
    return int(doc.get("TotalIn", 0)) + int(doc.get("TotalOut", 0))


def run(args: argparse.Namespace) -> dict[str, Any]:
    from prometheus_client import CollectorRegistry

    from gateway.config import PeerSection
    from gateway.peer import Identity, IpfsPubsubTransport, IpfsRpc, IpfsStore, PeerNode
    from gateway.peer.gossip import topic_for
    from gateway.peer.ipfs import directory_bytes, multibase_encode
    from gateway.rigs.kubo import KUBO_VERSION, KuboRig, kubo_missing_reason

    if args.rounds < 1:
        raise SystemExit(f"bench peer: --rounds = {args.rounds} must be at least 1")
    reason = kubo_missing_reason()
    if reason:
        raise SystemExit(f"bench peer: {reason}")
    root = Path(tempfile.mkdtemp(prefix="learnae-bench-peer-"))
    rig = KuboRig(root)
    nodes: list[Any] = []
    started = time.monotonic()
    try:
        for name in ("k0", "k1", "k2"):
            rig.add(name)
        rig.connect_all()
        _say(f"3 kubo {KUBO_VERSION} daemons on loopback in {time.monotonic() - started:.1f} s")
        settings = replace(
            PeerSection(enabled=True), session="bench", store="ipfs", transport="ipfs",
            round_interval_s=args.round_interval, announce_interval_s=args.round_interval,
            fetch_timeout_s=2.0, max_staleness=1000, keep_rounds=args.keep_rounds,
            gc_interval_s=args.gc_interval, fuse_peers=2)
        for i, kubo in enumerate(rig.nodes):
            nodes.append(PeerNode(
                identity=Identity.generate(),
                store=IpfsStore(IpfsRpc(kubo.api_url, timeout=10.0), get_timeout=2.0,
                                repo_path=kubo.repo),
                transport=IpfsPubsubTransport(kubo.api_url),
                trainer=StepTrainer(args.seed + i),
                settings=settings, registry=CollectorRegistry(), seed=args.seed + i))
        arg = multibase_encode(topic_for("bench").encode())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all(len(k.rpc("pubsub/peers", arg=arg).get("Strings") or []) >= 2
                   for k in rig.nodes):
                break
            time.sleep(0.1)
        else:
            raise SystemExit("bench peer: the pubsub mesh did not form within 30 s")
        bw0 = [_bw(k) for k in rig.nodes]
        published: dict[str, tuple[int, float]] = {}  # weights CID -> (node, publish time)
        fused: list[list[tuple[str, float]]] = [[] for _ in nodes]  # (weights CID, fusion time)
        repo_50: list[int | None] = [None] * len(nodes)  # bytes of the repository's files
        size_50: list[int | None] = [None] * len(nodes)  # kubo's RepoSize
        blocks_50: list[int | None] = [None] * len(nodes)  # flatfs alone (the blocks)
        round_ends: list[list[float]] = [[] for _ in nodes]
        lock = threading.Lock()
        errors: list[str] = []

        def loop(i: int) -> None:
            node, kubo = nodes[i], rig.nodes[i]
            done = 0
            while done < args.rounds:
                try:
                    info = node.run_round()
                except Exception as exc:  # a failed round is counted, the loop goes on
                    errors.append(f"node {i} round {done}: {exc}")
                    time.sleep(args.round_interval)
                    continue
                now = time.time()
                done += 1
                with lock:
                    published[info.weights_cid] = (i, info.time)
                    fused[i].extend((cid, now) for cid in info.fused_weights)
                    round_ends[i].append(now)
                if done == 50:
                    repo_50[i] = kubo.disk_bytes()
                    size_50[i] = kubo.repo_size()
                    blocks_50[i] = directory_bytes(kubo.repo / "blocks")
                if done % 25 == 0 and i == 0:
                    _say(f"round {done}/{args.rounds}")
                time.sleep(args.round_interval)

        threads = [threading.Thread(target=loop, args=(i,), daemon=True)
                   for i in range(len(nodes))]
        t0 = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - t0
        bw = [_bw(k) - b for k, b in zip(rig.nodes, bw0, strict=True)]
        # collect once more at the end, as the schedule would, before measuring
        for node in nodes:
            if node.retention is not None:
                node.retention.collect()
        repo_end = [k.disk_bytes() for k in rig.nodes]
        blocks_end = [directory_bytes(k.repo / "blocks") for k in rig.nodes]
        size_end = [k.repo_size() for k in rig.nodes]
        pinned = [len([c for c in n.store.pinned() if c.startswith("bafk")]) for n in nodes]
        gc_runs = [n.retention.gc_runs if n.retention else 0 for n in nodes]
    finally:
        for node in nodes:
            node.stop()
        rig.close()
        shutil.rmtree(root, ignore_errors=True)

    latencies: list[float] = []
    seen: set[tuple[int, str]] = set()
    for i, items in enumerate(fused):
        for cid, when in items:
            source = published.get(cid)
            if source is None or source[0] == i or (i, cid) in seen:
                continue
            seen.add((i, cid))
            latencies.append(when - source[1])
    periods = [b - a for ends in round_ends for a, b in itertools.pairwise(ends)]
    round_s = statistics.fmean(periods) if periods else None
    p50, p99 = _percentile(latencies, 50), _percentile(latencies, 99)
    possible = len(published) * (len(nodes) - 1)
    after_50 = max((r for r in repo_50 if r is not None), default=None)
    result: dict[str, Any] = {
        "rounds": args.rounds,
        "round_interval_s": args.round_interval,
        "round_period_s": None if round_s is None else round(round_s, 4),
        "publish_to_fusion_p50_s": None if p50 is None else round(p50, 4),
        "publish_to_fusion_p99_s": None if p99 is None else round(p99, 4),
        "publish_to_fusion_p99_rounds": None if p99 is None or not round_s
        else round(p99 / round_s, 3),
        "fused_fraction": round(len(latencies) / possible, 4) if possible else None,
        "bytes_per_peer_round": round(statistics.fmean(bw) / args.rounds, 1),
        "repo_bytes_after_50_rounds": after_50,
        "repo_bytes_end": max(repo_end),
        "repo_bytes_after_50_rounds_per_node": repo_50,
        "repo_bytes_end_per_node": repo_end,
        "blocks_bytes_end_per_node": blocks_end,
        "blocks_bytes_after_50_rounds_per_node": blocks_50,
        "kubo_repo_size_after_50_rounds_per_node": size_50,
        "kubo_repo_size_end_per_node": size_end,
        "pinned_blocks_end_per_node": pinned,
        "gc_runs_per_node": gc_runs,
        "keep_rounds": args.keep_rounds,
        "gc_interval_s": args.gc_interval,
        "failed_rounds": len(errors),
        "goal_p99_under_2_rounds": None if p99 is None or not round_s else p99 < 2 * round_s,
        "goal_repo_within_2x_of_50_rounds": None if after_50 is None
        else all(end <= 2 * r for end, r in zip(repo_end, repo_50, strict=True) if r),
        "peers": len(nodes),
        "kubo": KUBO_VERSION,
        "training": "fixed numpy step (no local training): the peer layer's own cost",
        "elapsed_s": round(elapsed, 2),
    }
    if errors:
        _say(f"{len(errors)} rounds failed, first: {errors[0]}")
    return result
