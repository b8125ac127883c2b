"""LEARNAE peer layer: a signed, hash-chained model log over a content store, with gossip.

The service calls ``build_peer_node(config, trainer)`` then ``start()`` / ``stop()``,
and reads ``peers()`` and ``rounds()`` for the API.
"""

from gateway.errors import (
    BlockNotFound,
    BlockTooLarge,
    ContentStoreError,
    ContentStoreUnavailable,
    PeerError,
    PeerRejected,
    TransportError,
    UnsafeConfig,
)
from gateway.peer.cid import cid_of
from gateway.peer.directory import PeerInfo
from gateway.peer.entry import Entry, decode_entry, sign_entry
from gateway.peer.factory import build_peer_node, build_store, build_transport
from gateway.peer.fusion import STRATEGIES, coordinate_median, krum, trimmed_mean, weighted_mean
from gateway.peer.identity import Identity
from gateway.peer.ipfs import IpfsPubsubTransport, IpfsRpc, IpfsStore
from gateway.peer.node import PeerNode, RoundInfo
from gateway.peer.store import ContentStore, LocalBlockStore, MemoryStore
from gateway.peer.trainer import LocalTrainer, TrainOutcome
from gateway.peer.transport import HubTransport, LocalHub, Transport, UdpTransport
from gateway.peer.weights import decode_weights, encode_weights

__all__ = [
    "STRATEGIES",
    "BlockNotFound",
    "BlockTooLarge",
    "ContentStore",
    "ContentStoreError",
    "ContentStoreUnavailable",
    "Entry",
    "HubTransport",
    "Identity",
    "IpfsPubsubTransport",
    "IpfsRpc",
    "IpfsStore",
    "LocalBlockStore",
    "LocalHub",
    "LocalTrainer",
    "MemoryStore",
    "PeerError",
    "PeerInfo",
    "PeerNode",
    "PeerRejected",
    "RoundInfo",
    "TrainOutcome",
    "Transport",
    "TransportError",
    "UdpTransport",
    "UnsafeConfig",
    "build_peer_node",
    "build_store",
    "build_transport",
    "cid_of",
    "coordinate_median",
    "decode_entry",
    "decode_weights",
    "encode_weights",
    "krum",
    "sign_entry",
    "trimmed_mean",
    "weighted_mean",
]
