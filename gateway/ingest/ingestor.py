"""Ingestor: the MQTT client, the validator and the group-commit writer, wired together."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from gateway.config import GatewayConfig
from gateway.errors import IngestError
from gateway.ingest.metrics import metrics_for
from gateway.ingest.mqtt import MqttError, MqttSource
from gateway.ingest.validate import DEFAULT_RANGES, Validator, parse_ranges
from gateway.ingest.writer import GroupWriter
from gateway.store import Store, StoreError
from shared.topics import DATA, STATUS, subscription

log = logging.getLogger("gateway.ingest")


class Ingestor:
    """Readings from MQTT into the store, acknowledged only once committed.

    States: new -> started -> stopped (not restartable; build a new one).
    """

    def __init__(self, config: GatewayConfig, store_path: Path, *,
                 registry: CollectorRegistry | None = None) -> None:
        self.config = config
        self.store_path = Path(store_path)
        self.metrics = metrics_for(registry)
        try:
            ranges = {**DEFAULT_RANGES, **parse_ranges(config.ingest.plausible_ranges)}
        except ValueError as exc:
            raise IngestError(f"ingest.plausible_ranges: {exc}") from exc
        self.ranges = ranges
        self._state = "new"
        self._store: Store | None = None
        self._writer: GroupWriter | None = None
        self._source: MqttSource | None = None
        self._started_at: float | None = None

    # ------------------------------------------------------------ lifecycle
    def start(self, wait_s: float = 5.0) -> None:
        """Open the store, start the writer, connect and subscribe.

        Returns once subscribed, or after ``wait_s`` while the client keeps
        trying in the background (the broker may come up later).
        """
        if self._state != "new":
            raise IngestError(f"Ingestor.start() called in state {self._state!r}")
        cfg = self.config
        try:
            store = Store.open(self.store_path, synchronous=cfg.store.synchronous,
                               quarantine_rows=cfg.store.quarantine_rows,
                               max_size_mb=cfg.store.max_size_mb,
                               busy_timeout_ms=cfg.store.busy_timeout_ms)
        except StoreError as exc:
            raise IngestError(f"cannot open the store: {exc}") from exc
        self._store = store
        register = cfg.ingest.unknown_devices == "register"

        def resolve(device: str) -> int | None:
            key = store.device_key(device)
            if key is None and register:
                key = store.register_device(device, source="auto")
            return key

        prefix = cfg.mqtt.topic_prefix
        validator = Validator(prefix, resolve=resolve, channel_set=store.channel_set,
                              ranges=self.ranges)
        retention = None
        if cfg.store.retention_days or cfg.store.max_rows_per_device:
            def retention() -> None:
                removed = store.apply_retention(
                    max_age_s=cfg.store.retention_days * 86400.0,
                    max_rows_per_device=cfg.store.max_rows_per_device)
                if removed:
                    log.info("retention removed %d readings", removed)

        self._source = source = MqttSource(
            cfg.mqtt,
            client_id=cfg.mqtt.client_id or f"learnae-gateway-{cfg.gateway.id}",
            subscriptions=[subscription(prefix, DATA), subscription(prefix, STATUS)],
            on_message=lambda *item: writer.offer(item),  # type: ignore[arg-type]
            receive_maximum=cfg.ingest.receive_maximum,
            on_state=self._mqtt_state,
        )
        writer = self._writer = GroupWriter(
            store, validator, source.ack, self.metrics,
            max_messages=cfg.ingest.commit_max_messages, max_ms=cfg.ingest.commit_max_ms,
            retention=retention, retention_interval_s=cfg.ingest.retention_interval_s)
        writer.health_extra.update({"pid": os.getpid(), "mqtt": "connecting",
                                    "broker": f"{cfg.mqtt.host}:{cfg.mqtt.port}"})
        writer.start()
        self._state = "started"
        self._started_at = time.time()
        try:
            if not source.start(wait_s):
                log.warning("not subscribed to %s:%d yet (%s); still trying", cfg.mqtt.host,
                            cfg.mqtt.port, source.last_error or "no answer")
        except MqttError as exc:
            self.stop()
            raise IngestError(str(exc)) from exc

    def _mqtt_state(self, up: bool) -> None:
        self.metrics.connected.set(1 if up else 0)
        if self._writer is not None:
            self._writer.set_health(mqtt="subscribed" if up else "disconnected")

    def stop(self, timeout: float = 5.0) -> None:
        """Stop taking messages, commit and ack what is in hand, disconnect."""
        if self._state != "started":
            self._state = "stopped"
            return
        self._state = "stopping"
        source, writer, store = self._source, self._writer, self._store
        if source is not None:
            source.pause()
        clean = True
        if writer is not None:
            clean = writer.stop(max(0.5, timeout - 1.0))
        if source is not None:
            source.stop()
        if writer is not None:
            writer.set_health(mqtt="stopped")
        if store is not None and clean:
            store.close()
        self.metrics.connected.set(0)
        self._state = "stopped"

    def __enter__(self) -> Ingestor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ use
    def publish_retained(self, topic: str, payload: bytes) -> None:
        """Publish a retained message (config, model, discovery) with the gateway's client."""
        if self._source is None or self._state != "started":
            raise IngestError(f"publish_retained({topic!r}) needs a started Ingestor")
        self._source.publish_retained(topic, payload)

    @property
    def store(self) -> Store:
        if self._store is None:
            raise IngestError("the Ingestor has not been started")
        return self._store

    @property
    def subscribed(self) -> bool:
        return self._source is not None and self._source.connected.is_set()

    def stats(self) -> dict[str, Any]:
        w = self._writer
        if w is None:
            return {"state": self._state}
        lat = sorted(w.latencies)
        totals = dict(w.totals)
        return {
            "state": self._state,
            "subscribed": self.subscribed,
            "mqtt_error": self._source.last_error if self._source is not None else None,
            "store": "ok" if w.store_ok else "unavailable",
            "store_error": w.last_error,
            "messages": totals.get("messages", 0),
            "stored": totals.get("stored", 0),
            "duplicates": totals.get("duplicates", 0),
            "rejected": totals.get("rejected", 0),
            "rejected_by_reason": dict(w.rejected_by_reason),
            "implausible": totals.get("implausible", 0),
            "implausible_by_channel": dict(w.implausible_by_channel),
            "commits": totals.get("commits", 0),
            "queue_depth": len(w.queue),
            "p50_commit_latency_ms": _pct(lat, 0.50) * 1000,
            "p99_commit_latency_ms": _pct(lat, 0.99) * 1000,
        }


def _pct(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]
