"""The gateway's ed25519 identity: created on first start, kept in data_dir (0600).

The peer id is ``p`` + base32 (lowercase, no padding) of the raw 32-byte public
key, so an id is self-certifying: anyone can check an entry's signature from
the id alone, with no key directory to trust or keep in sync.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.errors import PeerError, PeerRejected

KEY_FILE = "peer_ed25519.pem"
_PEER_ID_RE = re.compile(r"^p[a-z2-7]{52}$")


def peer_id_of(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "p" + base64.b32encode(raw).decode("ascii").lower().rstrip("=")


def check_peer_id(peer_id: object) -> str:
    if not isinstance(peer_id, str) or not _PEER_ID_RE.match(peer_id):
        raise PeerRejected("bad_peer_id", f"{peer_id!r} is not a peer id")
    return peer_id


def public_key_of(peer_id: str) -> Ed25519PublicKey:
    check_peer_id(peer_id)
    raw = base64.b32decode(peer_id[1:].upper() + "====")
    return Ed25519PublicKey.from_public_bytes(raw)


def verify(peer_id: str, signature: bytes, message: bytes) -> None:
    """Raise PeerRejected unless ``signature`` is ``peer_id``'s signature of ``message``."""
    try:
        public_key_of(peer_id).verify(signature, message)
    except InvalidSignature as exc:
        raise PeerRejected("bad_signature", f"signature does not verify for {peer_id}") from exc
    except ValueError as exc:
        raise PeerRejected("bad_signature", f"malformed key or signature for {peer_id}") from exc


@dataclass(frozen=True)
class Identity:
    private_key: Ed25519PrivateKey

    @property
    def peer_id(self) -> str:
        return peer_id_of(self.private_key.public_key())

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)

    @classmethod
    def generate(cls) -> Identity:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> Identity:
        """A key derived from ``seed``: for reproducible experiments only, never for a gateway."""
        return cls(Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed).digest()))

    @classmethod
    def load_or_create(cls, data_dir: Path) -> Identity:
        """Read ``data_dir/peer_ed25519.pem``, creating it (mode 0600) on first start."""
        path = Path(data_dir) / KEY_FILE
        if path.exists():
            mode = path.stat().st_mode & 0o777
            if mode & 0o077:
                raise PeerError(f"key file {str(path)!r} has mode {mode:o}; it must be 600")
            try:
                key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            except ValueError as exc:
                raise PeerError(f"key file {str(path)!r} is not a PEM private key") from exc
            if not isinstance(key, Ed25519PrivateKey):
                raise PeerError(f"key file {str(path)!r} does not hold an ed25519 key")
            return cls(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        return cls(key)
