"""An in-process content network for experiments: one store per peer, fetched like bitswap.

Each peer has its own MemoryStore. ``get`` of a block the peer lacks copies it
from a reachable, online peer that holds it, and counts the bytes on both
sides; blocks held only by unreachable peers are not found (as in IPFS when
the providers are cut off). Reachability is a policy the experiment changes
to take peers offline and cut partitions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from gateway.errors import BlockNotFound
from gateway.peer.store import DEFAULT_MAX_BLOCK, MemoryStore


class SimNetwork:
    def __init__(self, *, max_block_bytes: int = DEFAULT_MAX_BLOCK) -> None:
        self.max_block_bytes = max_block_bytes
        self.stores: dict[str, MemoryStore] = {}
        self.holders: dict[str, list[str]] = defaultdict(list)
        self.reachable: Callable[[str, str], bool] = lambda a, b: True
        self.sent_bytes: dict[str, int] = defaultdict(int)
        self.received_bytes: dict[str, int] = defaultdict(int)

    def store_for(self, name: str) -> NetworkStore:
        self.stores.setdefault(name, MemoryStore(max_block_bytes=self.max_block_bytes))
        return NetworkStore(self, name)


class NetworkStore:
    """One peer's view of the SimNetwork (a ContentStore)."""

    def __init__(self, network: SimNetwork, name: str) -> None:
        self.network = network
        self.name = name
        self.local = network.stores[name]
        self.max_block_bytes = network.max_block_bytes

    def put(self, data: bytes) -> str:
        cid = self.local.put(data)
        holders = self.network.holders[cid]
        if self.name not in holders:
            holders.append(self.name)
        return cid

    def get(self, cid: str, *, timeout: float | None = None) -> bytes:
        if self.local.has(cid):
            return self.local.get(cid)
        for holder in self.network.holders.get(cid, ()):
            if holder != self.name and self.network.reachable(self.name, holder):
                data = self.network.stores[holder].get(cid)
                self.network.sent_bytes[holder] += len(data)
                self.network.received_bytes[self.name] += len(data)
                self.put(data)
                return data
        raise BlockNotFound(f"no reachable peer holds {cid}")

    def pin(self, cid: str) -> None:
        self.local.pin(cid)

    def close(self) -> None:
        """Nothing to release: the network outlives its peers."""
