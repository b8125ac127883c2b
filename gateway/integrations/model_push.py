"""New edge models pushed to the boards that run them, retained on ``<prefix>/<device>/model``."""

from __future__ import annotations

import logging
from collections.abc import Callable

from prometheus_client import REGISTRY, CollectorRegistry, Counter

from gateway.config import GatewayConfig
from gateway.learning.export import export_model
from gateway.learning.registry import ModelRegistry
from gateway.store import Store
from shared.topics import topic

__all__ = ["ModelPusher"]

log = logging.getLogger("learnae.model_push")


class ModelPusher:
    """Publish a device's new edge model (LEM1) retained on ``<prefix>/<device>/model``.

    Only to devices that opted in: firmware that can run the edge model reports a
    ``"model"`` field in its status document (the CRC of the model it runs, or null
    before the first one); ``api.push_model = "all"`` pushes to every device.
    """

    def __init__(self, config: GatewayConfig, publish: Callable[[str, bytes], None], *,
                 registry: CollectorRegistry | None = None) -> None:
        self.config = config
        self._publish = publish
        self.pushes = Counter("learnae_model_pushes", "Edge models offered to devices, by result",
                              ["result"], registry=REGISTRY if registry is None else registry)

    def opted_in(self, device: str) -> bool:
        if self.config.api.push_model == "all":
            return True
        with Store.open(self.config.db_path, readonly=True) as store:
            info = store.device(device)
        return info is not None and "model" in info.status

    def push(self, device: str, version: int) -> bool:
        try:
            if not self.opted_in(device):
                self.pushes.labels("not_opted_in").inc()
                return False
            with ModelRegistry(self.config.db_path) as registry:
                found = registry.get(version)
                if found.status != "promoted":  # the board keeps the model it has
                    self.pushes.labels("not_promoted").inc()
                    return False
                data = export_model(found, "edge")
            self._publish(topic(self.config.mqtt.topic_prefix, device, "model"), data)
        except Exception:
            self.pushes.labels("failed").inc()
            log.exception("pushing model version %s to %s failed", version, device)
            return False
        self.pushes.labels("published").inc()
        log.info("pushed model version %d to %s (%d bytes)", version, device, len(data))
        return True
