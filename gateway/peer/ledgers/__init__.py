"""Ledgers for head announcements: the port and its adapters.

- ``NoLedger`` (``kind = "none"``): heads travel by gossip alone.
- ``MemoryChain`` / ``MemoryLedger``: an in-process ledger for experiments.
- ``EvmLedger`` (``kind = "iota-evm"``, in ``gateway.peer.ledgers.evm``): the
  Announcements contract on IOTA EVM (or any EVM chain), through web3.py.
- ``IotaLedger`` (``kind = "iota"``, in ``gateway.peer.ledgers.iota``): the learnae Move
  package on IOTA layer 1, through iota-sdk.

The last two need the ``ledger`` extra (web3, iota-sdk); ``require_ledger_extra`` says
which package is missing and how to install it before either is imported.

``LedgerLink`` sits between a PeerNode and its ledger: the announcement policy,
an outbox for when the ledger is down, and the checks on what is read back.
"""

from gateway.peer.ledgers.base import (
    ORIGIN,
    Announcement,
    Ledger,
    Position,
    Receipt,
    binding_message,
)
from gateway.peer.ledgers.extra import require_ledger_extra
from gateway.peer.ledgers.link import Anchored, Equivocation, LedgerLink
from gateway.peer.ledgers.memory import MemoryChain, MemoryLedger
from gateway.peer.ledgers.metrics import LedgerMetrics
from gateway.peer.ledgers.none import NoLedger

__all__ = [
    "ORIGIN",
    "Anchored",
    "Announcement",
    "Equivocation",
    "Ledger",
    "LedgerLink",
    "LedgerMetrics",
    "MemoryChain",
    "MemoryLedger",
    "NoLedger",
    "Position",
    "Receipt",
    "binding_message",
    "require_ledger_extra",
]
