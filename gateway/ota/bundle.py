"""An update bundle: the firmware's files compiled for one board, and its manifest.

The stream a board receives is ``[u32 L][manifest][HMAC-SHA256(key, manifest)]``
followed by every file in manifest order (docs/protocol.md, OTA). The manifest
is canonical JSON: ``{"v": 1, "id": ..., "version": ..., "ota_confirm_s": ...,
"files": [[name, size, sha256 hex], ...]}``; the HMAC is over its exact bytes,
under the device's own key, so a bundle is bound to one device and transfer.
``main.py`` and ``otaboot.py`` are the board's boot loader: they choose the
version to run, so they are flashed over USB and never sent over the air.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
from dataclasses import dataclass
from pathlib import Path

from gateway import __version__
from gateway.errors import BundleError, FirmwareError
from gateway.firmware.build import (
    FIRMWARE_DIR,
    PROTOCOL_DIR,
    board_arch,
    compile_module,
    mpy_cross,
)

BOOT_LOADER = ("main.py", "otaboot.py", "__init__.py")
FACTORY_VERSION = __version__  # of the files flashed over USB: the release's


@dataclass(frozen=True)
class BundleFile:
    name: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class Bundle:
    version: str
    files: tuple[BundleFile, ...]

    @property
    def firmware_bytes(self) -> int:
        return sum(len(f.data) for f in self.files)

    def manifest(self, transfer_id: str, confirm_s: int) -> bytes:
        return manifest_bytes({"v": 1, "id": transfer_id, "version": self.version,
                               "ota_confirm_s": confirm_s}, self.files)

    def stream(self, transfer_id: str, key: bytes, confirm_s: int = 120) -> bytes:
        """The bytes the board receives, in order."""
        return head(self.manifest(transfer_id, confirm_s), key) + b"".join(
            f.data for f in self.files)


def manifest_bytes(doc: dict, files: tuple[BundleFile, ...] = ()) -> bytes:
    """A JSON line (``files``: how many), then ``<sha256 hex> <size> <name>`` per file.

    Lines, so that a board reads the entries from flash one at a time instead
    of parsing one JSON document of every file into RAM.
    """
    for f in files:
        if " " in f.name or "\n" in f.name:
            raise BundleError(f"file name {f.name!r} holds a space or a newline")
    line = json.dumps({**doc, "files": len(files)}, separators=(",", ":"), sort_keys=True)
    return (line + "\n" + "".join(f"{f.sha256} {len(f.data)} {f.name}\n" for f in files)
            ).encode()


def head(manifest: bytes, key: bytes) -> bytes:
    """``[u32 length][manifest][HMAC-SHA256(key, manifest)]``."""
    mac = hmac.new(key, manifest, hashlib.sha256).digest()
    return struct.pack(">I", len(manifest)) + manifest + mac


def build_bundle(work: Path, *, board: str | None = None, source: Path | None = None) -> Bundle:
    """Compile ``source`` (default: the project's firmware) for ``board``.

    Every ``*.py`` of ``source`` but the boot loader becomes ``<name>.mpy``, and
    the protocol package (``source/shared`` if present, else the project's)
    ``shared/<name>.mpy``, with the flags ``flash`` uses (``-O3 -s ""``).
    """
    src = Path(source) if source is not None else FIRMWARE_DIR
    if not src.is_dir():
        raise BundleError(f"firmware source {str(src)!r} is not a directory")
    shared = src / "shared" if (src / "shared").is_dir() else PROTOCOL_DIR
    try:
        arch = board_arch(board)
    except FirmwareError as exc:
        raise BundleError(str(exc)) from exc
    jobs = [(p, p.stem + ".mpy") for p in sorted(src.glob("*.py")) if p.name not in BOOT_LOADER]
    jobs += [(p, f"shared/{p.stem}.mpy") for p in sorted(shared.glob("*.py"))]
    if not jobs:
        raise BundleError(f"firmware source {str(src)!r} holds no .py files")
    work.mkdir(parents=True, exist_ok=True)
    files = []
    try:
        compiler = mpy_cross()
        for path, name in jobs:
            out = work / name.replace("/", "_")
            compile_module(compiler, path, out, arch)
            files.append(BundleFile(name, out.read_bytes()))
    except FirmwareError as exc:
        raise BundleError(str(exc)) from exc
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode() + b"\0" + f.data)
    return Bundle(f"{FACTORY_VERSION}+{digest.hexdigest()[:8]}", tuple(files))
