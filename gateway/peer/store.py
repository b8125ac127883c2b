"""The ContentStore port and the local blockstore adapter.

A content store keeps opaque blocks named by their CID (see ``cid.py``). The
peer layer puts weights blobs and log entries into it and gets other peers'
blocks out of it. Every adapter verifies that a block it returns hashes to the
CID asked for, so a faulty or hostile store cannot substitute content.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Protocol, runtime_checkable

from gateway.errors import BlockNotFound, BlockTooLarge, ContentStoreUnavailable, PeerRejected
from gateway.peer.cid import check_cid, cid_of, verify_block

DEFAULT_MAX_BLOCK = 1 << 20  # bitswap's own limit: larger blocks do not travel between IPFS nodes


@runtime_checkable
class ContentStore(Protocol):
    """Blocks by CID. ``get`` raises BlockNotFound / ContentStoreUnavailable; never returns
    wrong bytes."""

    max_block_bytes: int

    def put(self, data: bytes) -> str:
        """Store ``data``; return its CID (the same CID in every adapter)."""
        ...

    def get(self, cid: str, *, timeout: float | None = None) -> bytes:
        """Return the block named ``cid``."""
        ...

    def pin(self, cid: str) -> None:
        """Keep ``cid`` from being garbage-collected."""
        ...

    def close(self) -> None:
        """Release connections (the node calls it when it stops); idempotent."""
        ...


def check_size(data: bytes, limit: int, what: str = "block") -> None:
    if len(data) > limit:
        raise BlockTooLarge(f"{what} of {len(data)} bytes exceeds the limit of {limit} bytes")


class LocalBlockStore:
    """A directory of blocks, one file per CID; writes are atomic (temp file + rename).

    Pinning is recorded as an empty marker file, ``pins/<owner>/<cid>`` (``pins/<cid>``
    without an owner): several gateways on one machine may share the directory, each
    pinning and unpinning only its own markers. ``gc`` deletes every block that no
    owner pins and that is older than ``gc_grace_s`` (a block another gateway has just
    put and not yet pinned is left alone).
    """

    def __init__(
        self,
        root: Path,
        *,
        max_block_bytes: int = DEFAULT_MAX_BLOCK,
        gc_grace_s: float = 60.0,
        owner: str = "",
    ) -> None:
        self.root = Path(root)
        self.max_block_bytes = max_block_bytes
        self.gc_grace_s = gc_grace_s
        if owner and (not owner.replace("-", "").replace("_", "").isalnum()):
            raise ValueError(f"blockstore pin owner {owner!r} must be letters, digits, - or _")
        self._pins = self.root / "pins" / owner if owner else self.root / "pins"
        (self.root / "blocks").mkdir(parents=True, exist_ok=True)
        self._pins.mkdir(parents=True, exist_ok=True)

    def _path(self, cid: str) -> Path:
        return self.root / "blocks" / check_cid(cid)

    def put(self, data: bytes) -> str:
        check_size(data, self.max_block_bytes)
        cid = cid_of(data)
        path = self._path(cid)
        if not path.exists():
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return cid

    def get(self, cid: str, *, timeout: float | None = None) -> bytes:
        try:
            path = self._path(cid)
        except PeerRejected as exc:
            raise BlockNotFound(str(exc)) from exc
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise BlockNotFound(f"block {cid} is not in {self.root}") from exc
        except OSError as exc:
            raise ContentStoreUnavailable(f"cannot read block {cid}: {exc.strerror}") from exc
        check_size(data, self.max_block_bytes)
        verify_block(cid, data)
        return data

    def has(self, cid: str) -> bool:
        return self._path(cid).exists()

    def pin(self, cid: str) -> None:
        if not self.has(cid):
            raise BlockNotFound(f"cannot pin {cid}: not in {self.root}")
        (self._pins / cid).touch()

    def unpin(self, cid: str) -> None:
        (self._pins / check_cid(cid)).unlink(missing_ok=True)

    def gc(self) -> int:
        """Delete unpinned blocks older than the grace period; return how many went."""
        pins = {p.name for p in (self.root / "pins").rglob("*") if p.is_file()}
        cutoff = time.time() - self.gc_grace_s
        removed = 0
        try:
            for path in (self.root / "blocks").iterdir():
                if path.name in pins or path.name.startswith(".tmp-"):
                    continue
                try:
                    if path.stat().st_mtime <= cutoff:
                        path.unlink()
                        removed += 1
                except FileNotFoundError:  # another gateway sharing the directory got it first
                    continue
        except OSError as exc:
            raise ContentStoreUnavailable(f"cannot collect garbage in {self.root}: {exc}") from exc
        return removed

    def disk_bytes(self) -> int:
        total = 0
        for path in (self.root / "blocks").iterdir():
            try:
                total += path.stat().st_size
            except FileNotFoundError:
                continue
        return total

    def close(self) -> None:
        """Nothing to release: every call opens and closes its own file."""


class MemoryStore:
    """Blocks in a dict: the local store's semantics without a filesystem (experiments).

    It never forgets (no ``gc``): tests and experiments share one as the network.
    """

    def __init__(self, *, max_block_bytes: int = DEFAULT_MAX_BLOCK) -> None:
        self.max_block_bytes = max_block_bytes
        self._blocks: dict[str, bytes] = {}
        self._pins: set[str] = set()
        self._lock = threading.Lock()

    def put(self, data: bytes) -> str:
        check_size(data, self.max_block_bytes)
        cid = cid_of(data)
        with self._lock:
            self._blocks[cid] = bytes(data)
        return cid

    def get(self, cid: str, *, timeout: float | None = None) -> bytes:
        with self._lock:
            data = self._blocks.get(cid)
        if data is None:
            raise BlockNotFound(f"block {cid!r} is not in this memory store")
        return data

    def has(self, cid: str) -> bool:
        with self._lock:
            return cid in self._blocks

    def pin(self, cid: str) -> None:
        if not self.has(cid):
            raise BlockNotFound(f"cannot pin {cid}: not in this memory store")
        with self._lock:
            self._pins.add(cid)

    def close(self) -> None:
        """Nothing to release."""
