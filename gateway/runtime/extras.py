"""Optional parts of the installation: the ``pyproject.toml`` extras the gateway checks for.

The ledger adapters need web3 (IOTA EVM) and iota-sdk (IOTA layer 1, a 34 MB pre-release),
so they are the ``ledger`` extra, installed only where a ledger is configured
(``pip install 'learnae-edge[ledger]'``; ``make test`` and ``learnae-gateway install`` do).
"""

from __future__ import annotations

import importlib

__all__ = ["EXTRAS", "install_hint", "missing_modules"]

# extra -> the top-level modules it provides that the gateway imports
EXTRAS: dict[str, tuple[str, ...]] = {
    "ledger": ("web3", "eth_account", "iota_sdk"),
}


def missing_modules(extra: str) -> list[str]:
    """The modules of ``extra`` that cannot be imported here."""
    missing = []
    for module in EXTRAS[extra]:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    return missing


def install_hint(extra: str) -> str:
    return f"pip install 'learnae-edge[{extra}]'"
