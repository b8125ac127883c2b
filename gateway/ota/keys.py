"""Each device's OTA key: 32 random bytes, hex, one file per device (mode 0600).

``device add`` creates it (and writes the board's copy, ``ota.key`` on its
flash, beside the device config); a rotation is staged in ``<id>.key.next``
and replaces the key only once the board has acknowledged it, so a lost
acknowledgement never leaves the two sides with different keys for long:
``pending()`` still knows the new one.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from gateway.config import GatewayConfig
from shared.topics import check_device_id


class KeyStore:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _path(self, device: str, suffix: str = "") -> Path:
        return self.directory / f"{check_device_id(device)}.key{suffix}"

    def _write(self, path: Path, key: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(key.hex() + "\n")

    def create(self, device: str) -> bytes:
        """A fresh key for ``device`` (replacing any earlier one)."""
        key = secrets.token_bytes(32)
        self._write(self._path(device), key)
        return key

    def get(self, device: str) -> bytes:
        path = self._path(device)
        try:
            key = bytes.fromhex(path.read_text().strip())
        except FileNotFoundError:
            raise KeyError(f"device {device!r} has no OTA key in {self.directory} "
                           "(created by `learnae-gateway device add`)") from None
        except ValueError as exc:
            raise KeyError(f"OTA key file {path} is not hex: {exc}") from exc
        if len(key) != 32:
            raise KeyError(f"OTA key file {path} holds {len(key)} bytes, not 32")
        return key

    def devices(self) -> list[str]:
        return sorted(p.name[:-4] for p in self.directory.glob("*.key"))

    def stage_rotation(self, device: str) -> bytes:
        key = secrets.token_bytes(32)
        self._write(self._path(device, ".next"), key)
        return key

    def pending(self, device: str) -> bytes | None:
        path = self._path(device, ".next")
        return bytes.fromhex(path.read_text().strip()) if path.exists() else None

    def commit_rotation(self, device: str) -> None:
        os.replace(self._path(device, ".next"), self._path(device))


def keys_dir(config: GatewayConfig) -> Path:
    """Where the gateway keeps its devices' OTA keys: ``<data_dir>/ota/keys``."""
    return config.gateway.data_dir / "ota" / "keys"
