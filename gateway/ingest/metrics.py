"""Prometheus metrics of the ingest path, one set per registry.

Counters are incremented once per group commit, not per message, to keep the
per-message cost of the hot path down.
"""

from __future__ import annotations

import threading
import weakref

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

_LOCK = threading.Lock()
_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, IngestMetrics] = (
    weakref.WeakKeyDictionary())


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.received = Counter("learnae_ingest_messages_received", "MQTT messages received",
                                ["kind"], registry=registry)
        self.stored = Counter("learnae_ingest_readings_stored",
                              "Readings committed to the store", registry=registry)
        self.duplicates = Counter("learnae_ingest_readings_duplicate",
                                  "Readings already stored (redeliveries), not stored again",
                                  registry=registry)
        self.rejected = Counter("learnae_ingest_messages_rejected",
                                "Messages rejected, by reason", ["reason"], registry=registry)
        self.implausible = Counter(
            "learnae_ingest_values_implausible",
            "Values outside their channel's plausible range, stored as missing", ["channel"],
            registry=registry)
        self.commit_batch = Histogram(
            "learnae_ingest_commit_batch_messages", "Messages per group commit",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000), registry=registry)
        self.latency = Histogram(
            "learnae_ingest_commit_latency_seconds",
            "From arrival at the gateway's MQTT client to the commit that holds the message",
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0),
            registry=registry)
        self.queue_depth = Gauge("learnae_ingest_queue_depth",
                                 "Messages received and not yet committed", registry=registry)
        self.store_available = Gauge(
            "learnae_ingest_store_available",
            "1 while commits succeed; 0 while the database cannot be written (no acks sent)",
            registry=registry)
        self.store_errors = Counter("learnae_ingest_store_errors",
                                    "Failed commit attempts (each is retried)", registry=registry)
        self.connected = Gauge("learnae_ingest_mqtt_connected",
                               "1 while subscribed to the broker", registry=registry)


def metrics_for(registry: CollectorRegistry | None) -> IngestMetrics:
    """The metric set of ``registry`` (None = global), created once per registry."""
    registry = REGISTRY if registry is None else registry
    with _LOCK:
        found = _BY_REGISTRY.get(registry)
        if found is None:
            found = _BY_REGISTRY[registry] = IngestMetrics(registry)
        return found
