"""The peer layer's exceptions: one tree, so callers catch what they can handle.

PeerError
├── StoreError            content store failures
│   ├── BlockNotFound     the store does not have (or could not find) the CID
│   ├── BlockTooLarge     a block over the configured size limit
│   └── StoreUnavailable  the store did not answer (timeout, refused, HTTP error)
├── TransportError        gossip could not be sent or received
├── Rejected              an entry, weights blob or gossip message failed validation
├── LedgerError           a ledger failed or refused an announcement
│   └── LedgerUnavailable the ledger's node did not answer (retryable)
└── UnsafeConfig          a test node's config breaks the network-safety rules
"""

from __future__ import annotations


class PeerError(Exception):
    """Base of every error raised by gateway.peer."""


class StoreError(PeerError):
    """The content store failed."""


class BlockNotFound(StoreError):
    """No block with that CID is available."""


class BlockTooLarge(StoreError):
    """A block exceeds the size limit."""


class StoreUnavailable(StoreError):
    """The content store could not be reached in time."""


class TransportError(PeerError):
    """Gossip could not be published or received."""


class Rejected(PeerError):
    """Foreign input failed validation; ``reason`` is a short label used in metrics."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


class UnsafeConfig(PeerError):
    """A node configuration that could reach beyond loopback."""


class LedgerError(PeerError):
    """A ledger (IOTA EVM, in-process) failed or refused an announcement."""


class LedgerUnavailable(LedgerError):
    """The ledger's node could not be reached in time; the announcement may be retried."""
