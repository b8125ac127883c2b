"""LEARNAE's resilience study: peers on the local adapters in one process, real data.

scikit-learn's digits are split non-IID across peers (label skew drawn from a
Dirichlet distribution) with a held-out test set. Every peer is a full
PeerNode: signed log, gossip through a LocalHub, weights fetched through a
SimNetwork of per-peer stores. Peers take their rounds in a random order and
skip some (they run at different speeds); no barrier, no coordinator.

Scenarios disturb the network: ``offline`` (a quarter of the peers gone for
the middle third), ``partition`` (two halves cut apart, then healed), ``churn``
(peers leave and join at random), ``byzantine`` (one peer publishes scaled or
NaN weights; run with the default fusion and with a robust one), and
``ledger_only``: no gossip at all, every head comes from an in-process ledger
with the same interface as the IOTA EVM one (``MemoryChain``), as in LEARNAE's
original design; an offline peer cannot reach the ledger either.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from prometheus_client import CollectorRegistry

from gateway.config import PeerSection
from gateway.experiments.simnet import SimNetwork
from gateway.learning.mlp import MLPSpec, TrainConfig, init_weights, predict, train
from gateway.peer.fusion import weighted_mean
from gateway.peer.identity import Identity
from gateway.peer.ledgers import MemoryChain
from gateway.peer.node import PeerNode
from gateway.peer.trainer import TrainOutcome, Weights
from gateway.peer.transport import LocalHub
from gateway.peer.weights import encode_weights, raw_float32_bytes

SCENARIOS = ("none", "offline", "partition", "churn", "byzantine", "ledger_only")


@dataclass(frozen=True)
class StudyConfig:
    peers: int = 8
    rounds: int = 60
    epochs: int = 4  # local epochs per round
    batch_size: int = 8  # small batches: a 40-image shard still takes 5 steps per epoch
    learning_rate: float = 1e-2
    lr_half_life: float = 12.0  # local rounds after which a peer's learning rate halves
    lr_floor: float = 0.05  # ... down to this fraction of learning_rate
    hidden: int = 64
    alpha: float = 0.5  # Dirichlet concentration of the label skew (smaller: more skewed)
    test_fraction: float = 0.3
    fuse_peers: int = 4
    staleness_half_life: float = 4.0  # rounds; 2 discounted slow and returning peers too fast
    gossip_shards: int = 0  # 0: about one shard per 8 peers
    robust_fusion: str = "trimmed_mean"
    speed: float = 0.9  # probability a peer completes a round in a given tick
    seed: int = 0
    scenarios: tuple[str, ...] = SCENARIOS
    wire_check: bool = True  # also run "none" with float32 uncompressed weights
    server_reference: bool = True  # also run the same local training averaged by a server


@dataclass
class Data:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    shards: list[np.ndarray] = field(default_factory=list)


def load_data(cfg: StudyConfig) -> Data:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=cfg.test_fraction, stratify=y, random_state=cfg.seed
    )
    data = Data(x_tr, y_tr, x_te, y_te)
    data.shards = split_label_skew(y_tr, cfg.peers, cfg.alpha, np.random.default_rng(cfg.seed))
    return data


def split_label_skew(
    y: np.ndarray, peers: int, alpha: float, rng: np.random.Generator, min_size: int = 10
) -> list[np.ndarray]:
    """Deal each class's samples to peers in Dirichlet(alpha) proportions (non-IID)."""
    for _ in range(100):
        parts: list[list[int]] = [[] for _ in range(peers)]
        for label in np.unique(y):
            idx = rng.permutation(np.flatnonzero(y == label))
            shares = rng.dirichlet([alpha] * peers)
            cuts = (np.cumsum(shares)[:-1] * len(idx)).astype(int)
            for peer, chunk in enumerate(np.split(idx, cuts)):
                parts[peer].extend(chunk.tolist())
        if min(len(p) for p in parts) >= min_size:
            return [np.asarray(sorted(p)) for p in parts]
    raise RuntimeError(f"cannot split {len(y)} samples over {peers} peers with >= {min_size} each")


class ShardTrainer:
    """LocalTrainer over one peer's shard: a few epochs of the project's MLP per round."""

    def __init__(
        self, spec: MLPSpec, x: np.ndarray, y: np.ndarray, cfg: StudyConfig, seed: int
    ) -> None:
        self.spec, self.x, self.y, self.cfg, self.seed = spec, x, y, cfg, seed
        self.calls = 0

    def initial_weights(self) -> Weights:
        return init_weights(self.spec, seed=self.cfg.seed)  # one session, one starting point

    def train(self, weights: Weights) -> TrainOutcome:
        self.calls += 1
        decay = max(0.5 ** ((self.calls - 1) / self.cfg.lr_half_life), self.cfg.lr_floor)
        config = TrainConfig(
            epochs=self.cfg.epochs,
            batch_size=self.cfg.batch_size,
            learning_rate=self.cfg.learning_rate * decay,
            seed=self.seed * 100_003 + self.calls,
        )
        result = train(self.spec, weights, self.x, self.y, config)
        last = result.history[-1] if result.history else {}
        metrics = {k: float(v) for k, v in last.items() if k != "epoch"}
        return TrainOutcome(result.weights, len(self.y), metrics)


class ByzantineTrainer(ShardTrainer):
    """Trains honestly in private, publishes sign-flipped x4 weights and NaN weights in turn."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.private: Weights | None = None

    def train(self, weights: Weights) -> TrainOutcome:
        honest = super().train(self.private if self.private is not None else weights)
        self.private = honest.weights
        if self.calls % 2:
            attacked = {k: (-4.0 * v).astype(np.float32) for k, v in honest.weights.items()}
        else:
            attacked = {k: np.full_like(v, np.nan) for k, v in honest.weights.items()}
        return TrainOutcome(attacked, honest.samples, {})


def accuracy(spec: MLPSpec, weights: Weights, x: np.ndarray, y: np.ndarray) -> float:
    with np.errstate(all="ignore"):
        return float(np.mean(predict(spec, weights, x).argmax(axis=1) == y))


def centralized(spec: MLPSpec, data: Data, cfg: StudyConfig) -> float:
    """The same model trained on all training data in one place: the yardstick.

    The best of a few training lengths and rates, scored on the test set: a strong
    yardstick makes the peers' ratio to it conservative.
    """
    best = 0.0
    for epochs in (20, 40, 80):
        for lr in (3e-3, cfg.learning_rate):
            config = TrainConfig(epochs=epochs, batch_size=32, learning_rate=lr, seed=cfg.seed)
            start = init_weights(spec, cfg.seed)
            weights = train(spec, start, data.x_train, data.y_train, config).weights
            best = max(best, accuracy(spec, weights, data.x_test, data.y_test))
    return best


def server_average(spec: MLPSpec, data: Data, cfg: StudyConfig) -> float:
    """Every peer's local rounds averaged by an ideal server each round (FedAvg, all peers).

    Not part of the protocol: a reference that separates what the split costs (local
    training on a few classes) from what partial, asynchronous gossip mixing costs.
    """
    trainers = [
        ShardTrainer(spec, data.x_train[s], data.y_train[s], cfg, seed=cfg.seed + i)
        for i, s in enumerate(data.shards)
    ]
    weights = init_weights(spec, cfg.seed)
    for _ in range(cfg.rounds):
        outcomes = [t.train(weights) for t in trainers]
        weights = weighted_mean([(o.weights, float(o.samples)) for o in outcomes])
    return accuracy(spec, weights, data.x_test, data.y_test)


Schedule = Callable[[int, np.random.Generator, list[bool], list[int]], None]


def _schedule(name: str, cfg: StudyConfig) -> Schedule:
    """How scenario ``name`` changes who is online (``online``) and who sees whom (``group``)."""
    n, rounds = cfg.peers, cfg.rounds
    third = rounds // 3

    def none(r: int, rng: np.random.Generator, online: list[bool], group: list[int]) -> None:
        return

    def offline(r: int, rng: np.random.Generator, online: list[bool], group: list[int]) -> None:
        gone = set(range(1, n, 4))  # a quarter of the peers
        for i in range(n):
            online[i] = not (i in gone and third <= r < 2 * third)

    def partition(r: int, rng: np.random.Generator, online: list[bool], group: list[int]) -> None:
        cut = third <= r < third + max(rounds // 4, 4)
        for i in range(n):
            group[i] = (i % 2) if cut else 0

    def churn(r: int, rng: np.random.Generator, online: list[bool], group: list[int]) -> None:
        if r == 0:
            for i in range(n):  # a quarter joins late
                online[i] = i % 4 != 3
            return
        if r >= rounds - 3:  # the network settles before the end
            online[:] = [True] * n
            return
        for i in range(n):
            if online[i] and rng.random() < 0.1:
                online[i] = False
            elif not online[i] and rng.random() < 0.3:
                online[i] = True

    return {
        "none": none,
        "offline": offline,
        "partition": partition,
        "churn": churn,
        "byzantine": none,
        "ledger_only": none,
    }[name]


def run_scenario(
    name: str,
    data: Data,
    spec: MLPSpec,
    cfg: StudyConfig,
    *,
    fusion: str,
    target: float,
    wire_dtype: str = "float16",
    compress: bool = True,
    byzantine: bool = False,
    progress: Callable[[str], None] = lambda s: None,
) -> dict[str, object]:
    n = cfg.peers
    rng = np.random.default_rng(cfg.seed + 7)
    hub, net = LocalHub(seed=cfg.seed), SimNetwork()
    tick = [0]
    online, group = [True] * n, [0] * n
    names = [f"p{i:02d}" for i in range(n)]
    index = {name: i for i, name in enumerate(names)}

    def reachable(a: str, b: str) -> bool:
        i, j = index[a], index[b]
        return online[i] and online[j] and group[i] == group[j]

    hub.reachable = net.reachable = reachable
    chain = MemoryChain(clock=lambda: float(tick[0])) if name == "ledger_only" else None
    if chain is not None:
        chain.reachable = lambda peer: online[index[peer]]
    settings = PeerSection(
        enabled=True,
        session="digits",
        fusion=fusion,  # type: ignore[arg-type]
        fuse_peers=cfg.fuse_peers,
        wire_dtype=wire_dtype,  # type: ignore[arg-type]
        compress=compress,
        gossip_shards=cfg.gossip_shards or max(1, math.ceil(n / 8)),
        fetch_timeout_s=0.1,
        staleness_half_life=cfg.staleness_half_life,
        shard_epoch_s=1.0,
        transport="ledger" if chain is not None else "udp",
    )
    nodes: list[PeerNode] = []
    honest = list(range(1, n)) if byzantine else list(range(n))
    for i, shard in enumerate(data.shards):
        kind = ByzantineTrainer if byzantine and i == 0 else ShardTrainer
        trainer = kind(spec, data.x_train[shard], data.y_train[shard], cfg, seed=cfg.seed + i)
        identity = Identity.from_seed(f"study/{cfg.seed}/{i}".encode())
        nodes.append(
            PeerNode(
                identity=identity,
                store=net.store_for(names[i]),
                transport=hub.endpoint(names[i]),
                trainer=trainer,
                settings=settings,
                registry=CollectorRegistry(),
                seed=cfg.seed * 1000 + i,
                clock=lambda: float(tick[0]),  # one shard epoch per tick
                ledger=None if chain is None else chain.endpoint(names[i], identity),
            )
        )
    schedule = _schedule(name, cfg)
    rounds_run = [0] * n
    curve: list[float] = []
    blob_sizes: list[int] = []
    for r in range(cfg.rounds):
        schedule(r, rng, online, group)
        tick[0] = r
        for node in nodes:
            node.refresh_gossip()
        for i in rng.permutation(n):
            if online[i] and rng.random() < cfg.speed:
                with np.errstate(all="ignore"):
                    info = nodes[i].run_round()
                rounds_run[i] += 1
                if i in honest and len(blob_sizes) < 50:
                    blob_sizes.append(len(net.stores[names[i]].get(info.weights_cid)))
        models = [nodes[i].current_weights() for i in honest if online[i]]
        accs = [accuracy(spec, w, data.x_test, data.y_test) for w in models if w is not None]
        curve.append(float(np.mean(accs)) if accs else 0.0)
        progress(f"{name}/{fusion} round {r + 1}/{cfg.rounds}: mean accuracy {curve[-1]:.4f}")
    finals = [w for w in (nodes[i].current_weights() for i in honest) if w is not None]
    final = [accuracy(spec, w, data.x_test, data.y_test) for w in finals]
    average = {k: np.mean([w[k] for w in finals], axis=0) for k in finals[0]}
    consensus = accuracy(spec, average, data.x_test, data.y_test)
    per_peer = [
        (
            net.sent_bytes[names[i]]
            + net.received_bytes[names[i]]
            + hub.sent_bytes[names[i]]
            + hub.received_bytes[names[i]]
        )
        / rounds_run[i]
        for i in range(n)
        if rounds_run[i]
    ]
    reach = next((r + 1 for r, acc in enumerate(curve) if acc >= 0.95 * target), None)
    rejected: dict[str, int] = {}
    for i in honest:
        for peer in nodes[i].peers():
            for reason, count in peer.rejected.items():
                rejected[reason] = rejected.get(reason, 0) + count
    mean_acc = float(np.mean(final))
    sample = nodes[honest[0]].weights
    assert sample is not None
    extra: dict[str, object] = {}
    if chain is not None:
        extra["ledger_announcements"] = len(chain.records)
    if byzantine:
        attacker = nodes[0].peer_id
        extra["attacker_models_fused"] = sum(
            info.fused_peers.count(attacker) for i in honest for info in nodes[i].rounds(10_000)
        )
    return {
        "fusion": fusion,
        "mean_accuracy": round(mean_acc, 4),
        "min_accuracy": round(float(np.min(final)), 4),
        "ratio_to_centralized": round(mean_acc / target, 4),
        # the average of the honest peers' final models: how far apart the peers still are
        "consensus_ratio": round(consensus / target, 4),
        "rounds_to_95pct": reach,
        "bytes_per_peer_round": round(float(np.mean(per_peer))),
        "weights_blob_bytes": round(float(np.mean(blob_sizes))),
        "raw_float32_bytes": raw_float32_bytes(sample),
        "rejected": rejected,
        **extra,
    }


def run_study(cfg: StudyConfig, progress: Callable[[str], None] | None = None) -> dict[str, object]:
    say = progress or (lambda s: print(s, file=sys.stderr, flush=True))
    started = time.monotonic()
    data = load_data(cfg)
    spec = MLPSpec(sizes=(64, cfg.hidden, 10), activation="relu", output="softmax")
    target = centralized(spec, data, cfg)
    say(f"centralized accuracy {target:.4f}; shards {[len(s) for s in data.shards]}")
    reference = server_average(spec, data, cfg) if cfg.server_reference else None
    scenarios: dict[str, object] = {}
    for name in cfg.scenarios:
        if name == "byzantine":
            scenarios["byzantine_default"] = run_scenario(
                name, data, spec, cfg, fusion="mean", target=target, byzantine=True, progress=say
            )
            scenarios["byzantine"] = run_scenario(
                name,
                data,
                spec,
                cfg,
                fusion=cfg.robust_fusion,
                target=target,
                byzantine=True,
                progress=say,
            )
        else:
            scenarios[name] = run_scenario(
                name, data, spec, cfg, fusion="mean", target=target, progress=say
            )
    result: dict[str, object] = {
        "peers": cfg.peers,
        "rounds": cfg.rounds,
        "centralized_accuracy": round(target, 4),
        "epochs": cfg.epochs,
        "batch_size": cfg.batch_size,
        "staleness_half_life": cfg.staleness_half_life,
        "scenarios": scenarios,
    }
    if reference is not None:
        result["server_average_ratio"] = round(reference / target, 4)
    if cfg.wire_check and "none" in scenarios:
        f32 = run_scenario(
            "none",
            data,
            spec,
            cfg,
            fusion="mean",
            target=target,
            wire_dtype="float32",
            compress=False,
            progress=say,
        )
        f16 = scenarios["none"]
        assert isinstance(f16, dict)
        result["wire"] = {
            "float16_zlib_blob_bytes": f16["weights_blob_bytes"],
            "float32_raw_bytes": f16["raw_float32_bytes"],
            "float16_fraction_of_raw": round(
                f16["weights_blob_bytes"] / f16["raw_float32_bytes"], 4
            ),
            "float32_blob_bytes": f32["weights_blob_bytes"],
            "accuracy_float16": f16["mean_accuracy"],
            "accuracy_float32": f32["mean_accuracy"],
            "accuracy_delta": round(f32["mean_accuracy"] - f16["mean_accuracy"], 4),
        }
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


def default_rounds(peers: int) -> int:
    """Rounds for a network of ``peers``: 60 up to 8 peers, 15 more per doubling beyond.

    Mixing over a larger network with a bounded number of peers fused per round takes
    longer (the hops for a model to reach everyone grow with log(peers)).
    """
    return 60 + max(0, round(15 * math.log2(peers / 8)))


def with_scenarios(cfg: StudyConfig, names: list[str]) -> StudyConfig:
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise ValueError(f"unknown scenarios {unknown} (known: {', '.join(SCENARIOS)})")
    return replace(cfg, scenarios=tuple(names))


__all__ = [
    "SCENARIOS",
    "StudyConfig",
    "default_rounds",
    "encode_weights",
    "run_study",
    "with_scenarios",
]
