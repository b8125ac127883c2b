"""LEARNAE edge gateway: ingest, store, learning, peer and API on one Raspberry Pi."""

__version__ = "0.1.0"
