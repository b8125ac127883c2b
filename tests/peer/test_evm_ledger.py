"""The iota-evm adapter against a real anvil (chain id 8822 on 127.0.0.1)."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account
from evm_rig import CHAIN_ID, Anvil, deploy_contract, free_port
from prometheus_client import CollectorRegistry

from gateway.errors import LedgerError, LedgerUnavailable
from gateway.peer import Identity, MemoryStore
from gateway.peer.cid import cid_of
from gateway.peer.entry import Entry
from gateway.peer.ledgers import LedgerLink, LedgerMetrics, evmkey
from gateway.peer.ledgers.evm import EvmLedger, EvmSettings
from gateway.peer.transport import NullTransport

from .conftest import StepTrainer, make_node

pytestmark = [pytest.mark.evm, pytest.mark.timeout(120)]


@pytest.fixture
def contract(anvil: Anvil) -> str:
    return deploy_contract(anvil)


def _ledger(
    anvil: Anvil, contract: str, state: Path, identity: Identity, **changes: object
) -> EvmLedger:
    account = evmkey.load_or_create(state)
    anvil.fund(account.address)
    values: dict[str, object] = {
        "rpc_url": anvil.url,
        "chain_id": CHAIN_ID,
        "contract": contract,
        "max_fee_wei": 100 * 10**9,
        "confirmations": 0,
        "receipt_timeout_s": 20.0,
        "retries": 1,
    }
    values.update(changes)
    return EvmLedger(
        EvmSettings(**values),  # type: ignore[arg-type]
        account=account,
        identity=identity,
        state_dir=state,
        sleep=lambda s: None,
    )


def _entry(identity: Identity, rnd: int, session: str) -> tuple[str, Entry]:
    entry = Entry(session, identity.peer_id, rnd, cid_of(f"w{rnd}".encode()), (), 10)
    return cid_of(f"{session}/{identity.peer_id}/{rnd}".encode()), entry


def _link(ledger: EvmLedger, session: str, own: str = "") -> LedgerLink:
    return LedgerLink(
        ledger,
        session=session,
        own_peer=own,
        every_round=True,
        anchor_every=1,
        reject=lambda peer, reason, message: None,
        metrics=LedgerMetrics(CollectorRegistry()),
    )


def test_announce_and_read_back_with_a_binding(anvil: Anvil, contract: str, tmp_path: Path) -> None:
    key = Identity.generate()
    ledger = _ledger(anvil, contract, tmp_path, key)
    cid, entry = _entry(key, 0, "s-read")
    receipt = ledger.announce(cid, entry)
    assert receipt.position is not None and 25_000 < receipt.gas_used < 60_000
    assert receipt.fee_wei > 0
    (item,) = ledger.announcements("s-read")
    assert (item.peer, item.round, item.entry_cid, item.tx) == (key.peer_id, 0, cid, receipt.tx)
    assert item.sender == ledger.address.lower() and item.position[0] == receipt.position[0]
    link = _link(ledger, "s-read")
    (claim,) = link.poll()
    assert (claim.peer, claim.head, claim.round) == (key.peer_id, cid, 0)
    assert list(ledger.announcements("other-session")) == []


def test_restart_resends_nothing_and_recovers_a_journaled_transaction(
    anvil: Anvil, contract: str, tmp_path: Path
) -> None:
    key = Identity.generate()
    first = _ledger(anvil, contract, tmp_path, key)
    cid0, entry0 = _entry(key, 0, "s-restart")
    first.announce(cid0, entry0)
    # a crash after signing and journaling round 1, before it was sent
    cid1, entry1 = _entry(key, 1, "s-restart")
    first._check_chain()
    record = first._sign(cid1, entry1)
    first.journal.pending[cid1] = record
    first.journal.next_nonce = record["nonce"] + 1
    first.journal.save()
    again = _ledger(anvil, contract, tmp_path, key)  # the restarted gateway
    repeated = again.announce(cid0, entry0)
    assert repeated.tx == first.journal.mined[cid0]  # not sent twice
    assert repeated.gas_used == 0 and repeated.fee_wei == 0  # nothing spent for it now
    assert again.announce(cid1, entry1).tx == record["tx"]  # the journaled tx, not a new one
    cid2, entry2 = _entry(key, 2, "s-restart")
    again.announce(cid2, entry2)
    items = list(again.announcements("s-restart"))
    assert [i.round for i in items] == [0, 1, 2]
    nonce = anvil.rpc("eth_getTransactionCount", again.address, "latest")
    assert int(nonce, 16) == 3  # three transactions, consecutive nonces


def test_fee_ceiling_makes_announcements_wait(anvil: Anvil, contract: str, tmp_path: Path) -> None:
    key = Identity.generate()
    ledger = _ledger(anvil, contract, tmp_path, key, max_fee_wei=1, priority_fee_wei=1)
    cid, entry = _entry(key, 0, "s-fee")
    with pytest.raises(LedgerUnavailable, match=r"exceeds ledger\.max_fee"):
        ledger.announce(cid, entry)
    assert list(ledger.announcements("s-fee")) == [] and not ledger.journal.pending


def test_wrong_chain_and_missing_contract_are_refused(
    anvil: Anvil, contract: str, tmp_path: Path
) -> None:
    key = Identity.generate()
    with pytest.raises(LedgerError, match=r"chain id 8822, ledger\.chain_id is 1"):
        _ledger(anvil, contract, tmp_path / "a", key, chain_id=1).announcements("s")
    empty = Account.create().address
    with pytest.raises(LedgerError, match=r"no contract at ledger\.contract"):
        _ledger(anvil, empty, tmp_path / "b", key).announcements("s")


def test_unreachable_node_is_reported_then_announcements_go_out(
    tmp_path: Path, contract: str, anvil: Anvil
) -> None:
    state = tmp_path / "chain.json"
    own = Anvil(tmp_path / "own", state=state).start()
    try:
        address = deploy_contract(own)
        key = Identity.generate()
        node = make_node(
            MemoryStore(),
            NullTransport(),
            StepTrainer(1.0),
            identity=key,
            ledger=_ledger(own, address, tmp_path / "gw", key),
            transport="ledger",
        )
        node.run_round()
        own.stop()  # the EVM node goes away (its chain saved with --state)
        node.run_round()
        node.run_round()  # training goes on meanwhile
        assert [e.round for _, e in node.ledger.outbox] == [1, 2]
        own = Anvil(tmp_path / "own", port=own.port, state=state).start()
        node.announce()  # the next tick sends what waited, in order
        assert not node.ledger.outbox
        ledger = node.ledger.ledger
        assert isinstance(ledger, EvmLedger)
        assert [i.round for i in ledger.announcements("test")] == [0, 1, 2]
        metrics = node.ledger.metrics
        assert metrics.announced.labels("sent")._value.get() == 3
        assert metrics.gas._value.get() > 3 * 25_000
    finally:
        own.stop()


def test_unreachable_rpc_url_raises_ledger_unavailable(tmp_path: Path, contract: str) -> None:
    key = Identity.generate()
    account = evmkey.load_or_create(tmp_path)
    ledger = EvmLedger(
        EvmSettings(
            rpc_url=f"http://127.0.0.1:{free_port()}",
            chain_id=CHAIN_ID,
            contract=contract,
            max_fee_wei=10**11,
            retries=2,
            request_timeout_s=2.0,
        ),
        account=account,
        identity=key,
        sleep=lambda s: None,
    )
    with pytest.raises(LedgerUnavailable, match="unreachable after 3 attempts"):
        ledger.announce(*_entry(key, 0, "s"))


def test_reorgs_within_and_beyond_confirmations(
    anvil: Anvil, contract: str, tmp_path: Path
) -> None:
    key = Identity.generate()
    ledger = _ledger(anvil, contract, tmp_path, key, confirmations=2)
    link = _link(ledger, "s-reorg")
    cid0, entry0 = _entry(key, 0, "s-reorg")
    ledger.announce(cid0, entry0)
    anvil.mine(2)
    assert [c.round for c in link.poll()] == [0]  # two blocks deep: read
    snapshot = anvil.rpc("evm_snapshot")
    cid1, entry1 = _entry(key, 1, "s-reorg")
    ledger.announce(cid1, entry1)
    assert link.poll() == []  # at the head: not confirmed, not read
    anvil.rpc("evm_revert", snapshot)  # a reorg of 1 block, within confirmations
    anvil.mine(3)
    assert link.poll() == []  # round 1 never existed for the reader: nothing to undo
    assert ledger.reorgs == 0
    # a reorg deeper than confirmations: blocks already read are replaced
    snapshot = anvil.rpc("evm_snapshot")
    anvil.mine(3)
    assert link.poll() == []
    anvil.rpc("evm_revert", snapshot)
    other = Identity.generate()
    ledger_b = _ledger(anvil, contract, tmp_path / "b", other, confirmations=2)
    cid_b, entry_b = _entry(other, 0, "s-reorg")
    ledger_b.announce(cid_b, entry_b)  # lands in a block the reader already passed
    anvil.mine(5)
    claims = link.poll()
    assert ledger.reorgs == 1
    assert [(c.peer, c.round) for c in claims] == [(other.peer_id, 0)]
