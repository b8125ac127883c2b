"""The gateway's EVM account key: ``data_dir/ledger_evm.key`` (0600), created on first start.

Separate from the ed25519 peer key: the EVM key pays for announcements and can
be replaced or funded without changing the peer's identity (the binding
signature ties an announcement to the peer id whatever account sent it). A key
can be imported with ``[ledger] key_file``; it must hold one 0x-prefixed
32-byte hex private key and be readable by its owner only.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from gateway.errors import LedgerError

KEY_FILE = "ledger_evm.key"
_KEY_RE = re.compile(r"^0x[0-9a-fA-F]{64}$")


def load_key(path: Path) -> LocalAccount:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise LedgerError(f"EVM key file {str(path)!r} has mode {mode:o}; it must be 600")
    text = path.read_text(encoding="ascii", errors="replace").strip()
    if not _KEY_RE.match(text):
        raise LedgerError(f"EVM key file {str(path)!r} does not hold a 0x + 64 hex private key")
    try:
        account: LocalAccount = Account.from_key(text)
        return account
    except ValueError as exc:
        raise LedgerError(f"EVM key file {str(path)!r}: {exc}") from exc


def write_key(path: Path, key_hex: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key_hex + "\n")


def load_or_create(
    data_dir: Path, key_file: Path | None = None, *, name: str = KEY_FILE
) -> LocalAccount:
    """The configured key file, else ``data_dir/<name>`` (created 0600 if missing).

    The same 32-byte secret format serves the IOTA layer-1 account (``ledger_iota.key``,
    an ed25519 seed): only its ``key`` bytes are used there."""
    if key_file is not None:
        if not key_file.exists():
            raise LedgerError(f"ledger.key_file = {str(key_file)!r} does not exist")
        return load_key(key_file)
    path = Path(data_dir) / name
    if not path.exists():
        write_key(path, "0x" + secrets.token_hex(32))
    return load_key(path)
