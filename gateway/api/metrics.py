"""Prometheus metrics of the service and the API.

Ingest and training register their own counters; this module adds the API's
request metrics and a collector that reads the gateway's state at scrape time
(devices, readings, model, peers, rounds) so nothing has to be kept in sync.
Process metrics (RSS, CPU, open files) come from prometheus-client's default
process collector in the global registry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:  # pragma: no cover
    from gateway.api.context import ServiceContext

log = logging.getLogger("learnae.metrics")


class ApiMetrics:
    """Request counts and latencies by route template (not raw path: bounded labels)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = REGISTRY if registry is None else registry
        # one family per attribute, declared in full like every part's metrics (peer, ledger,
        # ingest): the names and help texts are what /metrics shows
        self.requests = Counter(
            "learnae_api_requests",
            "HTTP requests answered, by route and status code",
            ["route", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "learnae_api_request_seconds",
            "Time to answer an HTTP request, by route",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=registry,
        )
        self.auth_failures = Counter(
            "learnae_api_auth_failures",
            "Mutating requests refused for a missing or wrong bearer token",
            ["reason"],
            registry=registry,
        )
        self.config_pushes = Counter(
            "learnae_config_pushes",
            "Device configs received through the API, by result",
            ["result"],
            registry=registry,
        )
        registry.register(ServiceCollector(self))
        self.context: ServiceContext | None = None


class ServiceCollector(Collector):
    """Gauges computed at scrape time from the store, the model and the peer loop."""

    def __init__(self, owner: ApiMetrics) -> None:
        self._owner = owner

    def describe(self) -> list[Metric]:
        return []  # computed at scrape time; no fixed description for registration checks

    def collect(self) -> Iterator[Metric]:
        context = self._owner.context
        if context is None:
            return
        gateway = context.config.gateway.id
        uptime = GaugeMetricFamily(
            "learnae_service_uptime_seconds", "Seconds since the service started",
            labels=["gateway"],
        )
        uptime.add_metric([gateway], time.time() - context.started_at)
        yield uptime
        yield from _safe(self._store_metrics, context)
        yield from _safe(self._model_metrics, context)
        yield from _safe(self._peer_metrics, context)

    @staticmethod
    def _store_metrics(context: ServiceContext) -> Iterator[Metric]:
        devices = context.store.get().devices()
        known = GaugeMetricFamily("learnae_devices", "Devices known to the store, by state",
                                  labels=["state"])
        online = sum(1 for d in devices if d.online)
        known.add_metric(["online"], online)
        known.add_metric(["offline"], len(devices) - online)
        yield known
        stored = GaugeMetricFamily("learnae_device_readings_stored",
                                   "Readings stored per device", labels=["device"])
        for device in devices:
            stored.add_metric([device.id], device.stored)
        yield stored

    @staticmethod
    def _model_metrics(context: ServiceContext) -> Iterator[Metric]:
        if context.models is None:
            return
        history = context.models.history(limit=1)
        rounds = GaugeMetricFamily("learnae_training_round", "Latest local training round")
        loss = GaugeMetricFamily("learnae_training_loss", "Metrics of the latest local round",
                                 labels=["metric"])
        if history:
            last = history[-1]
            rounds.add_metric([], float(last.get("round", 0)))
            for key, value in (last.get("metrics") or {}).items():
                if isinstance(value, int | float):
                    loss.add_metric([key], float(value))
        yield rounds
        yield loss

    @staticmethod
    def _peer_metrics(context: ServiceContext) -> Iterator[Metric]:
        if context.peers is None:
            return
        peers = context.peers.peers()
        known = GaugeMetricFamily("learnae_peers", "Peers known to the round loop (self included)")
        known.add_metric([], len(peers))
        yield known
        last = GaugeMetricFamily("learnae_peer_last_round", "Latest round seen per peer",
                                 labels=["peer"])
        age = GaugeMetricFamily("learnae_peer_last_seen_age_seconds",
                                "Seconds since a peer's latest entry", labels=["peer"])
        now = time.time()
        for peer in peers:
            pid = str(peer.get("peer_id"))[:64]
            if peer.get("last_round") is not None:
                last.add_metric([pid], float(peer["last_round"]))
            if peer.get("last_seen") is not None:
                age.add_metric([pid], max(0.0, now - float(peer["last_seen"])))
        yield last
        yield age


def _safe(fn: Any, context: ServiceContext) -> Iterator[Metric]:
    """A scrape must not fail because one source is briefly unavailable."""
    try:
        yield from list(fn(context))
    except Exception as exc:  # logged; the other families still export
        log.warning("metrics: %s failed: %s", fn.__name__, exc)
