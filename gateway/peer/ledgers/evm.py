"""The ``iota-evm`` ledger: the Announcements contract on IOTA EVM (chain id 8822) via web3.py.

Out (``announce``): one EIP-1559 transaction calling
``announce(session, peerId, round, entryCid, bindingSig)``. The fee cap is
``min(2 x base fee + tip, max_fee)``; when the base fee alone is above the
ceiling the announcement waits (``LedgerUnavailable``) instead of overpaying.
Every transaction is written to a journal (``data_dir/ledger_journal.json``)
after signing and before sending, with its nonce and raw bytes, so a gateway
killed at any point resumes without loss or duplicates: on the next call for
the same entry the journal's transaction is looked up, re-broadcast if the
node lost it, and awaited; an entry already mined is never sent again. Nonces
are the larger of the node's pending count and the journal's next nonce.
Receipts are awaited up to ``receipt_timeout_s``; connection failures are
retried ``retries`` times, then reported as ``LedgerUnavailable`` (the caller
keeps the announcement queued).

In (``announcements``): ``eth_getLogs`` filtered by contract, event and
session topic, up to ``confirmations`` blocks below the head only, so a reorg
shallower than that never changes what was read. The hash of the last block
read is kept; when it changes (a deeper reorg), reading restarts from the
newest block whose hash still matches and the blocks after it are read again
(readers drop a transaction they already read by its hash).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from eth_account.signers.local import LocalAccount
from requests.exceptions import RequestException
from web3 import Web3
from web3.exceptions import TimeExhausted, Web3Exception, Web3RPCError

from gateway.errors import LedgerError, LedgerUnavailable
from gateway.peer.entry import Entry
from gateway.peer.identity import Identity
from gateway.peer.ledgers.base import ORIGIN, Announcement, Position, Receipt, binding_message

log = logging.getLogger(__name__)
ARTIFACT = Path(__file__).with_name("contracts") / "Announcements.json"
JOURNAL_FILE = "ledger_journal.json"
MAX_BLOCK_RANGE = 2000  # blocks per eth_getLogs call
KEEP_MINED = 256
KEEP_HASHES = 64
T = TypeVar("T")


def load_artifact() -> dict[str, Any]:
    """The committed ABI and bytecode (``tests/peer/test_evm_contract.py`` recompiles them)."""
    doc: dict[str, Any] = json.loads(ARTIFACT.read_text())
    return doc


@dataclass(frozen=True)
class EvmSettings:
    rpc_url: str
    chain_id: int
    contract: str
    max_fee_wei: int
    priority_fee_wei: int = 1_000_000_000
    confirmations: int = 2
    receipt_timeout_s: float = 60.0
    request_timeout_s: float = 10.0
    retries: int = 2


def _is_unreachable(exc: BaseException) -> bool:
    return isinstance(exc, RequestException | OSError) or (
        isinstance(exc, Web3Exception) and "connect" in str(exc).lower()
    )


class Journal:
    """Transactions signed but not known mined, and entries already mined, on disk."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.pending: dict[str, dict[str, Any]] = {}  # entry CID -> tx record
        self.mined: OrderedDict[str, str] = OrderedDict()  # entry CID -> tx hash
        self.next_nonce = 0
        if path is not None and path.exists():
            doc = json.loads(path.read_text())
            self.pending = {p["entry_cid"]: p for p in doc.get("pending", [])}
            self.mined = OrderedDict(doc.get("mined", []))
            self.next_nonce = int(doc.get("next_nonce", 0))

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while len(self.mined) > KEEP_MINED:
            self.mined.popitem(last=False)
        doc = {
            "pending": sorted(self.pending.values(), key=lambda p: p["nonce"]),
            "mined": list(self.mined.items()),
            "next_nonce": self.next_nonce,
        }
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as handle:
            json.dump(doc, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)


class EvmLedger:
    kind = "iota-evm"

    def __init__(
        self,
        settings: EvmSettings,
        *,
        account: LocalAccount,
        identity: Identity,
        state_dir: Path | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not Web3.is_address(settings.contract):
            raise LedgerError(f"ledger.contract = {settings.contract!r} is not an EVM address")
        self.settings = settings
        self.account = account
        self.identity = identity
        self.address = account.address
        self.contract_address = Web3.to_checksum_address(settings.contract)
        self.sleep = sleep
        self.w3 = Web3(
            Web3.HTTPProvider(
                settings.rpc_url, request_kwargs={"timeout": settings.request_timeout_s}
            )
        )
        self.contract = self.w3.eth.contract(
            address=self.contract_address, abi=load_artifact()["abi"]
        )
        self.journal = Journal(None if state_dir is None else state_dir / JOURNAL_FILE)
        self.reorgs = 0
        self._checked = False
        self._hashes: OrderedDict[int, bytes] = OrderedDict()  # block -> hash, as read
        self._times: OrderedDict[int, float] = OrderedDict()
        self._lock = threading.Lock()

    # --- RPC with retries ---------------------------------------------------------------

    def _rpc(self, what: str, call: Callable[[], T]) -> T:
        attempts = self.settings.retries + 1
        for attempt in range(attempts):
            try:
                return call()
            except Web3RPCError as exc:
                raise LedgerError(f"{what} refused by {self.settings.rpc_url}: {exc}") from exc
            # the retry the IOTA adapter makes too (iota.py), over another client's errors
            except Exception as exc:
                if not _is_unreachable(exc):
                    raise
                if attempt + 1 == attempts:
                    raise LedgerUnavailable(
                        f"{what}: EVM node {self.settings.rpc_url} unreachable after "
                        f"{attempts} attempts ({type(exc).__name__})"
                    ) from exc
                self.sleep(0.2 * 2**attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _check_chain(self) -> None:
        if self._checked:
            return
        chain_id = self._rpc("eth_chainId", lambda: self.w3.eth.chain_id)
        if chain_id != self.settings.chain_id:
            raise LedgerError(
                f"EVM node {self.settings.rpc_url} has chain id {chain_id}, "
                f"ledger.chain_id is {self.settings.chain_id}"
            )
        code = self._rpc("eth_getCode", lambda: self.w3.eth.get_code(self.contract_address))
        if not code:
            raise LedgerError(f"no contract at ledger.contract = {self.settings.contract!r}")
        self._checked = True

    # --- out ----------------------------------------------------------------------------

    def binding(self, entry_cid: str, entry: Entry) -> bytes:
        message = binding_message(
            self.settings.chain_id,
            self.contract_address,
            entry.session,
            entry.round,
            entry_cid,
            self.address,
        )
        return self.identity.sign(message)

    def announce(self, entry_cid: str, entry: Entry) -> Receipt:
        with self._lock:
            self._check_chain()
            mined = self.journal.mined.get(entry_cid)
            if mined is not None:  # sent before (maybe before a restart): never twice
                return replace(self._receipt_of(mined), gas_used=0, fee_wei=0)  # nothing spent now
            record = self.journal.pending.get(entry_cid)
            if record is None:
                record = self._sign(entry_cid, entry)
                self.journal.pending[entry_cid] = record
                self.journal.next_nonce = record["nonce"] + 1
                self.journal.save()  # written before sending: a crash cannot lose or repeat it
            return self._drive(entry_cid, record)

    def _sign(self, entry_cid: str, entry: Entry) -> dict[str, Any]:
        s = self.settings
        call = self.contract.functions.announce(
            entry.session, entry.peer, entry.round, entry_cid, self.binding(entry_cid, entry)
        )
        latest = self._rpc("eth_getBlockByNumber", lambda: self.w3.eth.get_block("latest"))
        base = int(latest.get("baseFeePerGas", 0))
        if base + s.priority_fee_wei > s.max_fee_wei:
            raise LedgerUnavailable(
                f"base fee {base} wei + tip {s.priority_fee_wei} wei exceeds ledger.max_fee "
                f"{s.max_fee_wei} wei; the announcement waits"
            )
        pending = self._rpc(
            "eth_getTransactionCount",
            lambda: self.w3.eth.get_transaction_count(self.address, "pending"),
        )
        nonce = max(int(pending), self.journal.next_nonce)
        gas = self._rpc("eth_estimateGas", lambda: call.estimate_gas({"from": self.address}))
        tx = call.build_transaction(
            {  # type: ignore[arg-type]
                "from": self.address,
                "chainId": s.chain_id,
                "nonce": nonce,
                "gas": int(gas * 1.25) + 5_000,
                "maxFeePerGas": min(2 * base + s.priority_fee_wei, s.max_fee_wei),
                "maxPriorityFeePerGas": s.priority_fee_wei,
                "type": 2,
            }
        )
        signed = self.account.sign_transaction(tx)  # type: ignore[arg-type]
        return {
            "entry_cid": entry_cid,
            "round": entry.round,
            "nonce": nonce,
            "tx": "0x" + bytes(signed.hash).hex(),
            "raw": "0x" + bytes(signed.raw_transaction).hex(),
        }

    def _drive(self, entry_cid: str, record: dict[str, Any]) -> Receipt:
        """Get ``record``'s transaction mined: look it up, re-broadcast if lost, await it."""
        tx = record["tx"]
        found = self._lookup(tx)
        if found is None:
            try:
                self._rpc(
                    "eth_sendRawTransaction",
                    lambda: self.w3.eth.send_raw_transaction(bytes.fromhex(record["raw"][2:])),
                )
            except LedgerUnavailable:
                raise
            except LedgerError as exc:
                if self._known(tx):
                    pass  # sent before a restart and still in the node's pool: await it
                elif "nonce too low" in str(exc).lower() and self._lookup(tx) is None:
                    # the nonce was used by another of this account's transactions: sign anew
                    del self.journal.pending[entry_cid]
                    self.journal.save()
                    raise LedgerUnavailable(f"nonce {record['nonce']} taken; re-signing") from exc
                else:
                    raise
            try:
                found = self.w3.eth.wait_for_transaction_receipt(
                    tx, timeout=self.settings.receipt_timeout_s, poll_latency=0.1
                )
            except TimeExhausted as exc:
                raise LedgerUnavailable(
                    f"no receipt for {tx} (round {record['round']}) within "
                    f"{self.settings.receipt_timeout_s} s; kept pending"
                ) from exc
            except Exception as exc:
                if not _is_unreachable(exc):
                    raise
                raise LedgerUnavailable(f"waiting for {tx}: node unreachable") from exc
        del self.journal.pending[entry_cid]
        if int(found["status"]) != 1:
            self.journal.save()
            raise LedgerError(f"announcement {tx} of round {record['round']} reverted")
        self.journal.mined[entry_cid] = tx
        self.journal.save()
        return self._to_receipt(found)

    def _lookup(self, tx: str) -> Any:
        from web3.exceptions import TransactionNotFound

        def get() -> Any:
            try:
                return self.w3.eth.get_transaction_receipt(tx)  # type: ignore[arg-type]
            except TransactionNotFound:
                return None

        return self._rpc("eth_getTransactionReceipt", get)

    def _known(self, tx: str) -> bool:
        from web3.exceptions import TransactionNotFound

        def get() -> bool:
            try:
                return self.w3.eth.get_transaction(tx) is not None  # type: ignore[arg-type]
            except TransactionNotFound:
                return False

        return self._rpc("eth_getTransactionByHash", get)

    def _receipt_of(self, tx: str) -> Receipt:
        found = self._lookup(tx)
        if found is None:  # mined once, then reorganised away: not ours to resend blindly
            return Receipt(kind=self.kind, tx=tx, position=None)
        return self._to_receipt(found)

    def _to_receipt(self, found: Any) -> Receipt:
        gas = int(found["gasUsed"])
        price = int(found.get("effectiveGasPrice", 0))
        return Receipt(
            kind=self.kind,
            tx="0x" + bytes(found["transactionHash"]).hex(),
            position=(int(found["blockNumber"]), int(found["transactionIndex"])),
            gas_used=gas,
            fee_wei=gas * price,
        )

    # --- in -----------------------------------------------------------------------------

    def _block_hash(self, number: int) -> bytes:
        block = self._rpc("eth_getBlockByNumber", lambda: self.w3.eth.get_block(number))
        self._times[number] = float(block["timestamp"])
        while len(self._times) > 4 * KEEP_HASHES:
            self._times.popitem(last=False)
        return bytes(block["hash"])

    def _rewind_point(self) -> int | None:
        """None when the blocks read are still on the chain; else the block to read after."""
        if not self._hashes:
            return None
        newest = next(reversed(self._hashes))
        if self._block_hash(newest) == self._hashes[newest]:
            return None
        self.reorgs += 1
        for number in reversed(list(self._hashes)):
            if self._block_hash(number) == self._hashes[number]:
                break
            del self._hashes[number]
        else:
            number = -1
        log.warning("EVM reorg deeper than confirmations: reading again after block %d", number)
        return number

    def announcements(self, session: str, since: Position = ORIGIN) -> Iterator[Announcement]:
        with self._lock:
            self._check_chain()
            head = self._rpc("eth_blockNumber", lambda: self.w3.eth.block_number)
            confirmed = int(head) - self.settings.confirmations
            rewind = self._rewind_point()
            start = max(since[0], 0) if rewind is None else max(rewind + 1, 0)
            low = since if rewind is None else ORIGIN
            found: list[Announcement] = []
            event = self.contract.events.Announced()
            topic0 = event.topic
            session_topic = Web3.keccak(text=session)
            while start <= confirmed:
                end = min(confirmed, start + MAX_BLOCK_RANGE - 1)
                params = {
                    "fromBlock": start,
                    "toBlock": end,
                    "address": self.contract_address,
                    "topics": [topic0, session_topic],
                }
                logs = self._rpc("eth_getLogs", lambda p=params: self.w3.eth.get_logs(p))  # type: ignore[misc]
                for item in logs:
                    position = (int(item["blockNumber"]), int(item["logIndex"]))
                    if position <= low:
                        continue
                    found.append(self._decode(event, item, position))
                self._hashes[end] = self._block_hash(end)
                while len(self._hashes) > KEEP_HASHES:
                    self._hashes.popitem(last=False)
                start = end + 1
        return iter(found)

    def _decode(self, event: Any, item: Any, position: Position) -> Announcement:
        try:
            args = event.process_log(item)["args"]
            number = position[0]
            when = self._times.get(number)
            if when is None:
                self._block_hash(number)
                when = self._times[number]
            return Announcement(
                session=str(args["session"]),
                peer=str(args["peerId"]),
                round=int(args["round"]),
                entry_cid=str(args["entryCid"]),
                binding=bytes(args["bindingSig"]),
                sender=str(args["sender"]).lower(),
                chain_id=self.settings.chain_id,
                contract=self.contract_address.lower(),
                position=position,
                time=when,
                tx="0x" + bytes(item["transactionHash"]).hex(),
            )
        except (Web3Exception, ValueError, KeyError, UnicodeDecodeError) as exc:
            # an undecodable log still has a position: yield it as malformed for the reader
            return Announcement(
                session="",
                peer="",
                round=-1,
                entry_cid="",
                binding=b"",
                sender="",
                chain_id=self.settings.chain_id,
                contract=self.contract_address.lower(),
                position=position,
                time=0.0,
                tx=f"undecodable:{position[0]}:{position[1]}:{type(exc).__name__}",
            )

    def close(self) -> None:
        return None


def deploy(
    rpc_url: str, account: LocalAccount, *, chain_id: int, max_fee_wei: int, timeout_s: float = 120
) -> tuple[str, Receipt]:
    """Deploy the Announcements contract; return its address and the receipt."""
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 10}))
    try:
        actual = w3.eth.chain_id
    except Exception as exc:
        raise LedgerUnavailable(f"EVM node {rpc_url} unreachable: {exc}") from exc
    if actual != chain_id:
        raise LedgerError(f"EVM node {rpc_url} has chain id {actual}, expected {chain_id}")
    artifact = load_artifact()
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    base = int(w3.eth.get_block("latest").get("baseFeePerGas", 0))
    tip = min(1_000_000_000, max_fee_wei)
    if base + tip > max_fee_wei:
        raise LedgerError(f"base fee {base} wei exceeds the fee ceiling {max_fee_wei} wei")
    tx = factory.constructor().build_transaction(
        {
            "from": account.address,
            "chainId": chain_id,
            "nonce": w3.eth.get_transaction_count(account.address, "pending"),
            "maxFeePerGas": min(2 * base + tip, max_fee_wei),
            "maxPriorityFeePerGas": tip,
            "type": 2,
        }
    )
    signed = account.sign_transaction(tx)
    try:
        tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
        found = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout_s, poll_latency=0.1)
    except Web3RPCError as exc:
        raise LedgerError(f"deploying to {rpc_url} failed: {exc}") from exc
    except TimeExhausted as exc:
        raise LedgerUnavailable(f"no receipt for the deployment within {timeout_s} s") from exc
    if int(found["status"]) != 1 or not found["contractAddress"]:
        raise LedgerError(f"deployment {tx_hash.hex()} failed")
    gas = int(found["gasUsed"])
    receipt = Receipt(
        kind="iota-evm",
        tx="0x" + bytes(found["transactionHash"]).hex(),
        position=(int(found["blockNumber"]), int(found["transactionIndex"])),
        gas_used=gas,
        fee_wei=gas * int(found.get("effectiveGasPrice", 0)),
    )
    return str(found["contractAddress"]), receipt
