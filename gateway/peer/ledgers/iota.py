"""The ``iota`` ledger (IOTA Rebased, layer 1): one Move call per announcement, via GraphQL.

A transaction is built and signed offline with the official Rust SDK's Python
bindings (PyPI ``iota-sdk==3.0.0b1``): one programmable Move call
``<package>::announcements::announce(session, peer_id, round, entry_cid, binding_sig)``
(``contracts/iota/sources/announcements.move``), paid with one gas coin of the
account at the network's reference gas price (refused above ``max_fee``), and
submitted with the GraphQL mutation ``executeTransactionBlock``. Announcements
are read back with the GraphQL ``events`` query filtered by the module's
``Announced`` event type, page by page from the last cursor read.

Verified here: the transaction bytes, signature and digest are byte for byte
those of the TypeScript SDK (npm ``@iota/iota-sdk@1.15.1`` under Node 20) for
the same inputs, and the GraphQL requests have the documented shape (a local
endpoint in tests/peer/test_iota_ledger.py). Not verified here: execution on an
IOTA network (no registry ships a layer-1 node); docs/operations.md gives the
steps to do it on testnet. The account key is a 32-byte ed25519 seed in
``data_dir/ledger_iota.key`` (0x + 64 hex, 0600), like the EVM key.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from gateway.errors import LedgerError, LedgerUnavailable
from gateway.peer.entry import Entry
from gateway.peer.identity import Identity
from gateway.peer.ledgers.base import ORIGIN, Announcement, Position, Receipt, binding_message

log = logging.getLogger(__name__)
MODULE = "announcements"
FUNCTION = "announce"
EVENT = "Announced"
KEY_FILE = "ledger_iota.key"
PAGE = 50

GAS_QUERY = """query LearnaeGas($owner: IotaAddress!) {
  epoch { referenceGasPrice }
  address(address: $owner) { coins(first: 10) { nodes { address version digest coinBalance } } }
}"""
EXECUTE = """mutation LearnaeAnnounce($txBytes: String!, $signatures: [String!]!) {
  executeTransactionBlock(txBytes: $txBytes, signatures: $signatures) {
    errors
    effects {
      status
      checkpoint { sequenceNumber }
      gasEffects { gasSummary { computationCost storageCost storageRebate } }
    }
  }
}"""
EVENTS = """query LearnaeEvents($type: String!, $first: Int!, $after: String) {
  events(first: $first, after: $after, filter: {eventType: $type}) {
    pageInfo { hasNextPage endCursor }
    edges { cursor node { sender { address } timestamp json } }
  }
}"""


@dataclass(frozen=True)
class GasCoin:
    object_id: str  # 0x + 64 hex
    version: int
    digest: str  # base58


@dataclass(frozen=True)
class SignedTx:
    sender: str
    tx_bytes: bytes  # BCS TransactionData
    signature: str  # base64 flag || signature || public key
    digest: str  # base58


def sender_of(seed: bytes) -> str:
    from iota_sdk import Ed25519PrivateKey

    return str(Ed25519PrivateKey(seed).public_key().derive_address().to_hex())


def build_announcement(
    seed: bytes,
    *,
    package: str,
    session: str,
    peer: str,
    rnd: int,
    entry_cid: str,
    binding: bytes,
    gas: GasCoin,
    gas_price: int,
    gas_budget: int,
) -> SignedTx:
    """Build and sign the announcement transaction offline (no network)."""
    from iota_sdk import (
        Address,
        Ed25519PrivateKey,
        Identifier,
        ObjectDigest,
        ObjectId,
        ObjectReference,
        PtbArgument,
        TransactionBuilder,
        Version,
    )

    key = Ed25519PrivateKey(seed)
    sender = key.public_key().derive_address()
    builder = TransactionBuilder(sender).move_call(
        Address.from_hex(package.removeprefix("0x")),
        Identifier(MODULE),
        Identifier(FUNCTION),
        [
            PtbArgument.string(session),
            PtbArgument.string(peer),
            PtbArgument.u32(rnd),
            PtbArgument.string(entry_cid),
            PtbArgument.u8_vec(binding),
        ],
    )
    coin = ObjectReference(
        object_id=ObjectId.from_hex(gas.object_id.removeprefix("0x")),
        version=Version.from_u64(gas.version),
        digest=ObjectDigest.from_base58(gas.digest),
    )
    tx = builder.gas([coin]).gas_budget(gas_budget).gas_price(gas_price).finish()
    return SignedTx(
        sender=str(sender.to_hex()),
        tx_bytes=bytes(tx.to_bcs()),
        signature=str(key.sign_transaction(tx).to_base64()),
        digest=str(tx.digest().to_base58()),
    )


@dataclass(frozen=True)
class IotaSettings:
    graphql_url: str
    package: str  # 0x + 64 hex: the published learnae package
    chain_id: int  # the network's chain identifier as an integer (bound into each announcement)
    max_gas_price: int  # NANOS per gas unit: above it announcements wait
    gas_budget: int = 10_000_000
    timeout_s: float = 30.0
    retries: int = 2


class IotaLedger:
    kind = "iota"

    def __init__(
        self,
        settings: IotaSettings,
        *,
        seed: bytes,
        identity: Identity,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if len(seed) != 32:
            raise LedgerError(f"IOTA key seed has {len(seed)} bytes, not 32")
        self.settings, self.seed, self.identity, self.sleep = settings, seed, identity, sleep
        self.address = sender_of(seed)
        self.http = http or httpx.Client(timeout=settings.timeout_s)
        self.event_type = f"{settings.package}::{MODULE}::{EVENT}"
        self._cursor: str | None = None
        self._count = 0
        self._lock = threading.Lock()

    def _query(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        attempts = self.settings.retries + 1
        for attempt in range(attempts):
            try:
                reply = self.http.post(
                    self.settings.graphql_url, json={"query": query, "variables": variables}
                )
                reply.raise_for_status()
                doc = reply.json()
                break
            # the retry the EVM adapter makes too (evm.py), over another client's errors
            except (httpx.TransportError, httpx.HTTPStatusError) as exc:
                if attempt + 1 == attempts:
                    raise LedgerUnavailable(
                        f"IOTA GraphQL {self.settings.graphql_url} unreachable after "
                        f"{attempts} attempts: {exc}"
                    ) from exc
                self.sleep(0.2 * 2**attempt)
            except ValueError as exc:
                raise LedgerError(f"IOTA GraphQL answer is not JSON: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("errors"):
            raise LedgerError(f"IOTA GraphQL refused the request: {str(doc)[:300]}")
        data = doc.get("data")
        if not isinstance(data, dict):
            raise LedgerError(f"IOTA GraphQL answer has no data: {str(doc)[:300]}")
        return data

    # --- out ----------------------------------------------------------------------------

    def announce(self, entry_cid: str, entry: Entry) -> Receipt:
        s = self.settings
        with self._lock:
            data = self._query(GAS_QUERY, {"owner": self.address})
            try:
                price = int(data["epoch"]["referenceGasPrice"])
                nodes = data["address"]["coins"]["nodes"] if data.get("address") else []
                coins = [
                    (int(n["coinBalance"]), GasCoin(n["address"], int(n["version"]), n["digest"]))
                    for n in nodes
                ]
            except (KeyError, TypeError, ValueError) as exc:
                raise LedgerError(f"IOTA gas query answer is malformed: {exc!r}") from exc
            if price > s.max_gas_price:
                raise LedgerUnavailable(
                    f"reference gas price {price} exceeds ledger.max_fee {s.max_gas_price}; "
                    "the announcement waits"
                )
            usable = [coin for balance, coin in coins if balance >= s.gas_budget]
            if not usable:
                raise LedgerUnavailable(
                    f"account {self.address} has no coin of at least {s.gas_budget} NANOS"
                )
            binding = self.identity.sign(
                binding_message(
                    s.chain_id, s.package, entry.session, entry.round, entry_cid, self.address
                )
            )
            signed = build_announcement(
                self.seed,
                package=s.package,
                session=entry.session,
                peer=entry.peer,
                rnd=entry.round,
                entry_cid=entry_cid,
                binding=binding,
                gas=usable[0],
                gas_price=price,
                gas_budget=s.gas_budget,
            )
            result = self._query(
                EXECUTE,
                {
                    "txBytes": base64.b64encode(signed.tx_bytes).decode(),
                    "signatures": [signed.signature],
                },
            )
        executed = result.get("executeTransactionBlock") or {}
        effects = executed.get("effects") or {}
        if executed.get("errors") or effects.get("status") != "SUCCESS":
            raise LedgerError(
                f"announcement {signed.digest} failed: {executed.get('errors') or effects}"
            )
        summary = (effects.get("gasEffects") or {}).get("gasSummary") or {}
        fee = sum(int(summary.get(k, 0)) for k in ("computationCost", "storageCost"))
        fee -= int(summary.get("storageRebate", 0))
        checkpoint = (effects.get("checkpoint") or {}).get("sequenceNumber")
        return Receipt(
            kind=self.kind,
            tx=signed.digest,
            position=None if checkpoint is None else (int(checkpoint), 0),
            gas_used=int(summary.get("computationCost", 0)) // max(price, 1),
            fee_wei=fee,  # NANOS
        )

    # --- in -----------------------------------------------------------------------------

    def announcements(self, session: str, since: Position = ORIGIN) -> Iterator[Announcement]:
        # The cursor is this adapter's own: each call continues after the last event read
        # (of any session), whatever ``since`` says; positions count the events read.
        with self._lock:
            found: list[Announcement] = []
            while True:
                data = self._query(
                    EVENTS, {"type": self.event_type, "first": PAGE, "after": self._cursor}
                )
                try:
                    page = data["events"]
                    edges, info = page["edges"], page["pageInfo"]
                except (KeyError, TypeError) as exc:
                    raise LedgerError(f"IOTA events answer is malformed: {exc!r}") from exc
                for edge in edges:
                    self._cursor = edge.get("cursor", self._cursor)
                    item = self._decode(edge)
                    self._count += 1
                    if item.session in (session, ""):  # "": undecodable, the reader counts it
                        found.append(item)
                if not info.get("hasNextPage"):
                    break
        return iter(found)

    def _decode(self, edge: dict[str, Any]) -> Announcement:
        position = (self._count, 0)
        try:
            node = edge["node"]
            fields = node["json"]
            sig = fields["binding_sig"]
            binding = bytes(sig) if isinstance(sig, list) else base64.b64decode(sig)
            stamp = node.get("timestamp")
            when = datetime.fromisoformat(stamp).timestamp() if stamp else 0.0
            return Announcement(
                session=str(fields["session"]),
                peer=str(fields["peer_id"]),
                round=int(fields["round"]),
                entry_cid=str(fields["entry_cid"]),
                binding=binding,
                sender=str(node["sender"]["address"]).lower(),
                chain_id=self.settings.chain_id,
                contract=self.settings.package.lower(),
                position=position,
                time=when,
                tx=f"event:{edge.get('cursor')}",
            )
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("undecodable IOTA announcement at %s: %r", edge.get("cursor"), exc)
            return Announcement(
                session="", peer="", round=-1, entry_cid="", binding=b"", sender="",
                chain_id=self.settings.chain_id, contract=self.settings.package.lower(),
                position=position, time=0.0, tx=f"event:{edge.get('cursor')}",
            )

    def close(self) -> None:
        self.http.close()
