"""Helpers for the peer tests: a deterministic trainer and small node factories."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from gateway.config import PeerSection
from gateway.peer import Identity, LocalHub, MemoryStore, PeerNode, TrainOutcome
from gateway.peer.ledgers import Ledger
from gateway.peer.store import ContentStore
from gateway.peer.transport import Transport

SHAPES = {"layers.0.weight": (4, 3), "layers.0.bias": (3,)}


class StepTrainer:
    """A LocalTrainer whose "training" adds ``step`` to every weight: outcomes are exact."""

    def __init__(self, step: float, samples: int = 10) -> None:
        self.step = step
        self.samples = samples
        self.calls = 0

    def initial_weights(self) -> dict[str, np.ndarray]:
        return {k: np.zeros(s, np.float32) for k, s in SHAPES.items()}

    def train(self, weights: dict[str, np.ndarray]) -> TrainOutcome:
        self.calls += 1
        out = {k: (v + self.step).astype(np.float32) for k, v in weights.items()}
        return TrainOutcome(out, self.samples, {"loss": 1.0 / self.calls})


SETTINGS = PeerSection(
    enabled=True,
    session="test",
    fuse_peers=4,
    staleness_half_life=0.0,
    fetch_timeout_s=0.2,
    wire_dtype="float32",
    round_interval_s=0.0,
    announce_interval_s=0.2,
)


def make_node(
    store: ContentStore,
    transport: Transport,
    /,
    trainer: StepTrainer | None = None,
    identity: Identity | None = None,
    ledger: Ledger | None = None,
    anchor_every: int = 10,
    **changes: object,
) -> PeerNode:
    return PeerNode(
        identity=identity or Identity.generate(),
        store=store,
        transport=transport,
        trainer=trainer or StepTrainer(1.0),
        settings=replace(SETTINGS, **changes),  # type: ignore[arg-type]
        registry=CollectorRegistry(),
        seed=0,
        ledger=ledger,
        anchor_every=anchor_every,
    )


@pytest.fixture
def hub() -> LocalHub:
    return LocalHub()


@pytest.fixture
def shared_store() -> MemoryStore:
    return MemoryStore()
