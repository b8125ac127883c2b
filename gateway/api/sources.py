"""Adapters from other packages (learning, peer, shared.config) to the API's ports.

Each is looked up when the service starts; a package that is not there leaves
its port empty and the API answers accordingly (404 "no model yet",
``peers.enabled = false``).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.api.context import ModelsUnavailable

if TYPE_CHECKING:  # pragma: no cover
    from gateway.api.context import ModelSource

log = logging.getLogger("learnae.api")

ARTIFACT_PATHS = {"tflite": "/api/model.tflite", "edge": "/api/model.lem"}
REJECTED_SHOWN = 5  # of a device's versions rejected since its current one, the newest shown


class RegistryModels:
    """The learning package's model registry, read by the API (one connection per thread).

    Models are per device (each device's readings train its own forecaster); the
    "current" model is a device's latest version, or the newest of all devices.
    Exports are built on demand and cached by version.
    """

    def __init__(self, path: Path, *, cache_size: int = 16) -> None:
        self.path = path
        self._local = threading.local()
        self._cache: OrderedDict[tuple[int, str], bytes] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def _registry(self) -> Any:
        registry = getattr(self._local, "registry", None)
        if registry is None:
            from gateway.learning.registry import ModelRegistry, RegistryError

            try:
                registry = ModelRegistry(self.path)
            except RegistryError as exc:  # e.g. a full disk before the first model
                raise ModelsUnavailable(str(exc)) from exc
            self._local.registry = registry
        return registry

    def _latest(self, device: str | None) -> Any:
        """The current model: the newest version the promotion guard let through."""
        registry = self._registry()
        if device is not None:
            return registry.current(device)
        return registry.newest_promoted()

    @staticmethod
    def public(version: Any) -> dict[str, Any]:
        query = f"?device={version.device}"
        return {
            "version": version.version,
            "device": version.device,
            "task": version.task,
            "created": version.created,
            "samples": version.samples,
            "readings": version.readings,
            "data_start": version.data_start,
            "data_end": version.data_end,
            "channels": version.metadata.get("channels"),
            "window": version.metadata.get("window"),
            "threshold": version.metadata.get("threshold"),
            "metrics": version.metrics,
            "weights_cid": version.weights_cid,
            "artifacts": {fmt: path + query for fmt, path in ARTIFACT_PATHS.items()},
            "status": version.status,
            "reason": version.reason,
            "promotion": version.metadata.get("promotion"),
            "baselines": version.metadata.get("evaluation"),
        }

    def current(self, device: str | None = None) -> dict[str, Any] | None:
        latest = self._latest(device)
        return None if latest is None else self.public(latest)

    def latest_per_device(self) -> list[dict[str, Any]]:
        """Every device's current model, with the newest versions rejected since (figures,
        reason) and how many were."""
        # bounded queries: the registry gains versions every round, and a device whose
        # trainings keep losing to its current model gains rejected ones, so decoding all
        # of them on each request made the answer (and the memory it took) grow without end
        registry = self._registry()
        out = []
        for device in registry.device_names():
            current = registry.newest_promoted(device)
            if current is None:
                continue
            doc = self.public(current)
            # every version after the newest promoted one was rejected
            doc["rejected"] = [self.rejection(v) for v in registry.newer(
                device, current.version, limit=REJECTED_SHOWN)]
            doc["rejected_count"] = registry.count_newer(device, current.version)
            out.append(doc)
        return out

    @staticmethod
    def rejection(version: Any) -> dict[str, Any]:
        promotion = version.metadata.get("promotion") or {}
        return {"version": version.version, "created": version.created,
                "result": promotion.get("result"), "reason": version.reason,
                "figures": promotion.get("figures", {})}

    def versions(self, device: str) -> list[dict[str, Any]]:
        """Every version of ``device``, oldest first, promoted or rejected."""
        return [self.public(v) for v in self._registry().versions(device)]

    def artifact(self, fmt: str, device: str | None = None) -> bytes | None:
        latest = self._latest(device)
        if latest is None or latest.task != "forecast":
            return None
        key = (latest.version, fmt)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        from gateway.learning.export import export_model

        data = export_model(latest, fmt)
        with self._lock:
            self._cache[key] = data
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return data

    def history(self, limit: int) -> list[dict[str, Any]]:
        """Local training rounds as the API's rounds: one line per device."""
        registry = self._registry()
        recent = registry.recent(limit)
        counts: dict[str, int] = {}  # versions of each device before the first one shown
        for v in recent:
            if v.device not in counts:
                counts[v.device] = registry.count_up_to(v.device, v.version) - 1
        out = []
        for v in recent:
            counts[v.device] += 1
            out.append({
                "peer_id": v.device,
                "round": counts[v.device],
                "time": v.created,
                "samples": v.samples,
                "metrics": v.metrics,
                "weights_cid": v.weights_cid,
                "entry_cid": v.entry_cid,
                "version": v.version,
            })
        return out


def model_source_for(db_path: Path) -> ModelSource:
    """The model registry in the gateway's database, as the API reads it."""
    return RegistryModels(db_path)


def remote_config_validator(channels: list[str]) -> Callable[[Any], Any]:
    """The protocol's validator for configs the gateway sends to devices (REMOTE_KEYS).

    ``channels`` are the device's known channels (thresholds may only name them).
    """
    from shared.config import merge_remote_config

    base = {"period_ms": 1000, "batch_size": 20, "power_mode": "always_on",
            "thresholds": {}, "status_every_s": 60, "sensors": [{"channels": list(channels)}]}

    def validate(doc: Any) -> dict[str, Any]:
        merge_remote_config(base, doc)  # raises ProtocolError naming the field
        return dict(doc)

    return validate
