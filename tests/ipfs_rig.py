"""The kubo test rig: real kubo daemons on loopback, each configured and checked before start.

The daemons and the network-safety check live in ``gateway.rigs.kubo`` (the peer
benchmark starts the same nodes); this module adds what tests need: a rig in a
temporary directory and the sockets a running daemon holds, read from /proc.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.rigs.kubo import (
    KuboNode,
    KuboRig,
    check_config,
    free_port,
    kubo_binary,
    kubo_missing_reason,
    safe_settings,
)

__all__ = [
    "KuboNode",
    "Rig",
    "check_config",
    "connected_rig",
    "free_port",
    "inet_sockets",
    "kubo_binary",
    "kubo_missing_reason",
    "safe_settings",
]


class Rig(KuboRig):
    """A KuboRig in its own temporary directory, deleted on ``close``."""

    def __init__(self) -> None:
        super().__init__(Path(tempfile.mkdtemp(prefix="learnae-kubo-")))

    def close(self) -> None:
        super().close()
        shutil.rmtree(self.root, ignore_errors=True)


def connected_rig(names: tuple[str, ...]) -> Iterator[Rig]:
    """For a fixture: kubo nodes ``names``, all connected, closed afterwards (skips the
    test when no kubo binary is built)."""
    reason = kubo_missing_reason()
    if reason:
        pytest.skip(reason)
    running = Rig()
    try:
        for name in names:
            running.add(name)
        running.connect_all()
        yield running
    finally:
        running.close()


def _hex_addr(text: str) -> tuple[str, int]:
    """``0100007F:1F90`` (little-endian IPv4, hex port) -> ("127.0.0.1", 8080)."""
    host, port = text.split(":")
    if len(host) == 8:
        octets = bytes.fromhex(host)[::-1]
        return ".".join(str(b) for b in octets), int(port, 16)
    words = [bytes.fromhex(host[i : i + 8])[::-1] for i in range(0, 32, 8)]
    raw = b"".join(words)
    if raw[:12] == b"\0" * 10 + b"\xff\xff":  # IPv4-mapped IPv6
        return ".".join(str(b) for b in raw[12:]), int(port, 16)
    return ":".join(raw[i : i + 2].hex() for i in range(0, 16, 2)), int(port, 16)


def inet_sockets(pid: int) -> list[tuple[str, tuple[str, int], tuple[str, int]]]:
    """Every TCP/UDP (v4 and v6) socket of process ``pid``: (table, local, remote).

    Sockets are matched to the process by inode (``/proc/PID/fd/* -> socket:[N]``).
    """
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    out = []
    for table in ("tcp", "tcp6", "udp", "udp6"):
        with open(f"/proc/{pid}/net/{table}") as handle:
            next(handle)
            for line in handle:
                fields = line.split()
                if fields[9] in inodes:
                    out.append((table, _hex_addr(fields[1]), _hex_addr(fields[2])))
    return out
