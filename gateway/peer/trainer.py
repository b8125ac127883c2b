"""The LocalTrainer port: how the round loop asks the gateway's learner for a step.

The peer layer never sees data: it hands weights to the trainer and gets back
weights, the number of samples they were trained on and validation metrics.
The service adapts its real learner to this; experiments adapt an MLP on a
local data shard.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

Weights = dict[str, np.ndarray]


@dataclass(frozen=True)
class TrainOutcome:
    weights: Weights
    samples: int
    metrics: dict[str, float] = field(default_factory=dict)


@runtime_checkable
class LocalTrainer(Protocol):
    def initial_weights(self) -> Weights:
        """Weights to start from (the same for every peer of a session: seed from the session)."""
        ...

    def train(self, weights: Weights) -> TrainOutcome:
        """Continue training from ``weights`` for a few epochs on local data."""
        ...
