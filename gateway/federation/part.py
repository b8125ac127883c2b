"""The peer loop as a part of the service: started once there is something to train on."""

from __future__ import annotations

import logging
import threading
from typing import Any

from gateway.config import GatewayConfig
from gateway.errors import NothingToTrain
from gateway.federation.trainer import GatewayTrainer

__all__ = ["PeerPart"]

log = logging.getLogger("learnae.federation")


class PeerPart:
    """Starts the peer node once local data exists; stops it within the service's deadline."""

    def __init__(self, config: GatewayConfig, trainer: GatewayTrainer, *,
                 registry: Any = None, poll_s: float = 2.0) -> None:
        self.config = config
        self.trainer = trainer
        self.registry = registry
        if trainer.promotions is None:
            from prometheus_client import REGISTRY

            from gateway.learning.promotion import promotion_counter

            trainer.promotions = promotion_counter(registry if registry is not None else REGISTRY)
        self.poll_s = poll_s
        self.node: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        from gateway.peer.identity import Identity
        from gateway.peer.ledgers import require_ledger_extra

        kind = self.config.ledger.kind
        if kind != "none":  # said at start, not when the first round builds the node
            require_ledger_extra(f"ledger.kind = {kind!r}")
        # the peer id exists from the first start, before any round
        self.peer_id = Identity.load_or_create(self.config.gateway.data_dir).peer_id
        self._thread = threading.Thread(target=self._wait_then_run, name="peer-start",
                                        daemon=True)
        self._thread.start()

    def _wait_then_run(self) -> None:
        from gateway.peer import build_peer_node

        settings = self.config.training
        enough = settings.min_windows + settings.window + 1
        while not self._stop.is_set():
            try:
                if any(len(ts) >= enough for _, ts, _, _ in self.trainer.local_series()):
                    break
            except NothingToTrain:
                pass
            except Exception:
                log.exception("peer: reading local data failed")
            self._stop.wait(self.poll_s)
        with self._lock:
            if self._stop.is_set():
                return
            self.node = build_peer_node(self.config, self.trainer, registry=self.registry)
            self.node.start()
            log.info("peer %s: round loop started (session %r, channels %s)",
                     self.node.peer_id, self.config.peer.session, self.trainer.channels)

    def request_stop(self) -> None:
        self._stop.set()
        node = self.node
        if node is not None:
            node.request_stop()  # a round in progress ends at its next check

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.trainer.close()  # a training step in progress is abandoned, not waited for
        with self._lock:
            node = self.node
        if node is not None:
            node.stop(timeout=max(0.1, timeout - 0.2))
        if self._thread is not None:
            self._thread.join(0.2)
