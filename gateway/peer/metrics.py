"""Prometheus metrics of one peer node (pass a fresh registry per node in tests and studies)."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge


class PeerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = REGISTRY if registry is None else registry
        # declared one by one like every part's metrics (api, ledger, ingest)
        self.rejected = Counter(
            "learnae_peer_rejected_total",
            "Entries, weights and gossip from other peers rejected, by peer and reason",
            ["peer", "reason"],
            registry=registry,
        )
        self.fetch_failures = Counter(
            "learnae_peer_fetch_failures_total",
            "Blocks of other peers that could not be fetched in time, by peer and reason",
            ["peer", "reason"],
            registry=registry,
        )
        self.rounds = Counter(
            "learnae_peer_rounds_total", "Rounds this peer completed", registry=registry
        )
        self.fused = Counter(
            "learnae_peer_fused_models_total", "Other peers' models fused", registry=registry
        )
        self.bytes = Counter(
            "learnae_peer_bytes_total",
            "Bytes moved by the peer layer",
            ["direction"],
            registry=registry,
        )
        self.round = Gauge("learnae_peer_round", "This peer's latest round", registry=registry)
        self.known_peers = Gauge(
            "learnae_peer_known_peers", "Peers of the session heard of", registry=registry
        )
        self.store_bytes = Gauge(
            "learnae_peer_store_bytes",
            "Disk used by the content store (kubo: repo/stat RepoSize), as last measured",
            registry=registry,
        )
        self.store_bound = Gauge(
            "learnae_peer_store_bound_bytes",
            "peer.max_store_bytes: above it /healthz reports degraded",
            registry=registry,
        )
        self.pinned_blocks = Gauge(
            "learnae_peer_pinned_blocks",
            "Blocks the retention policy keeps pinned",
            registry=registry,
        )
        self.gc_runs = Counter(
            "learnae_peer_gc_runs_total",
            "Garbage collections of the content store",
            registry=registry,
        )
        self.gc_removed = Counter(
            "learnae_peer_gc_removed_blocks_total",
            "Blocks deleted by the content store's garbage collection",
            registry=registry,
        )
        self.store_errors = Counter(
            "learnae_peer_store_errors_total",
            "Failed pin, unpin, gc and disk-use calls of the retention policy, by operation",
            ["op"],
            registry=registry,
        )


def short(peer_id: str) -> str:
    """Metric label for a peer: enough of the id to tell peers apart, bounded length."""
    return peer_id[:16]
