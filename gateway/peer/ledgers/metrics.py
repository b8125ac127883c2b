"""Prometheus metrics of a ledger link: what was announced, what it cost, what was refused."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge


class LedgerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = REGISTRY if registry is None else registry
        # declared one by one like every part's metrics (api, peer, ingest)
        self.announced = Counter(
            "learnae_ledger_announcements_total",
            "Announcements sent by this peer, by result (sent, failed: retried, refused)",
            ["result"],
            registry=registry,
        )
        self.pending = Gauge(
            "learnae_ledger_pending_announcements",
            "Announcements waiting for the ledger to be reachable again",
            registry=registry,
        )
        self.gas = Counter(
            "learnae_ledger_gas_used_total",
            "Gas used by this peer's announcements",
            registry=registry,
        )
        self.last_gas = Gauge(
            "learnae_ledger_gas_per_announcement",
            "Gas used by this peer's latest announcement",
            registry=registry,
        )
        self.fees = Counter(
            "learnae_ledger_fees_wei_total",
            "Fees paid for this peer's announcements (wei)",
            registry=registry,
        )
        self.seen = Counter(
            "learnae_ledger_announcements_seen_total",
            "Announcements read from the ledger and accepted",
            registry=registry,
        )
        self.rejected = Counter(
            "learnae_ledger_rejected_total",
            "Announcements read from the ledger and rejected, by reason",
            ["reason"],
            registry=registry,
        )
        self.equivocations = Counter(
            "learnae_ledger_equivocations_total",
            "Pairs of different entries anchored for one (peer, session, round)",
            registry=registry,
        )
