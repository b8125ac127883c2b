"""The gateway's EVM key: created 0600 on first start, kept, importable, refused when exposed."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import LedgerError
from gateway.peer.ledgers import evmkey


def test_created_once_with_mode_600(tmp_path: Path) -> None:
    first = evmkey.load_or_create(tmp_path)
    path = tmp_path / evmkey.KEY_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    assert evmkey.load_or_create(tmp_path).address == first.address  # kept across restarts


def test_imported_key_file_is_used(tmp_path: Path) -> None:
    key = "0x" + "11" * 32
    path = tmp_path / "imported.key"
    evmkey.write_key(path, key)
    account = evmkey.load_or_create(tmp_path / "data", path)
    assert account.key.hex().removeprefix("0x") == "11" * 32
    assert not (tmp_path / "data" / evmkey.KEY_FILE).exists()


def test_exposed_missing_and_malformed_keys_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "k"
    evmkey.write_key(path, "0x" + "22" * 32)
    path.chmod(0o644)
    with pytest.raises(LedgerError, match="has mode 644; it must be 600"):
        evmkey.load_key(path)
    with pytest.raises(LedgerError, match="does not exist"):
        evmkey.load_or_create(tmp_path, tmp_path / "nope")
    bad = tmp_path / "bad"
    evmkey.write_key(bad, "not a key")
    with pytest.raises(LedgerError, match="does not hold a 0x"):
        evmkey.load_key(bad)
