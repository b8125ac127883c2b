"""Mosquitto password and ACL files, written without the ``mosquitto_passwd`` tool.

Mosquitto 2.0 reads ``user:$7$<iterations>$<salt b64>$<hash b64>`` where the
hash is PBKDF2-HMAC-SHA512 over the password with a 12-byte salt.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path

PBKDF2_ITERATIONS = 101


def password_hash(password: str, *, salt: bytes | None = None,
                  iterations: int = PBKDF2_ITERATIONS) -> str:
    salt = os.urandom(12) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def write_password_file(path: Path, users: dict[str, str]) -> None:
    """Write (replace) a password file with 0600 permissions."""
    text = "".join(f"{name}:{password_hash(pw)}\n" for name, pw in sorted(users.items()))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def write_acl(path: Path, acl: dict[str, list[str]]) -> None:
    """Write an ACL file: a ``user NAME`` block of topic lines per user."""
    blocks = []
    for name, lines in sorted(acl.items()):
        blocks.append("\n".join([f"user {name}", *lines]))
    path.write_text("\n\n".join(blocks) + "\n")


def verify_password(hashed: str, password: str) -> bool:
    """Whether ``hashed`` (``$7$iterations$salt$hash``, as written above) is ``password``'s."""
    parts = hashed.split("$")
    if len(parts) != 5 or parts[1] != "7" or not parts[2].isdigit():
        return False
    try:
        salt = base64.b64decode(parts[3], validate=True)
        digest = base64.b64decode(parts[4], validate=True)
    except ValueError:
        return False
    computed = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(parts[2]), len(digest))
    return hmac.compare_digest(computed, digest)
