"""The ledger adapters' packages (web3, iota-sdk: the ``ledger`` extra), checked before use."""

from __future__ import annotations

from gateway.errors import LedgerNotInstalled
from gateway.runtime.extras import install_hint, missing_modules

__all__ = ["require_ledger_extra"]


def require_ledger_extra(what: str) -> None:
    """Raise LedgerNotInstalled naming the missing packages unless the ``ledger`` extra
    (what the ``iota-evm`` and ``iota`` adapters import) is installed; ``what`` names the
    setting or command that needs it."""
    missing = missing_modules("ledger")
    if missing:
        raise LedgerNotInstalled(
            f"{what} needs the ledger extra ({', '.join(missing)} not installed): "
            f"{install_hint('ledger')}")
