"""Three real gateways with ``transport = "ledger"``: rounds found on an anvil chain alone.

anvil runs on 127.0.0.1 with chain id 8822; the contract is deployed by the rig
and each gateway's EVM key (in its data_dir, 0600) is funded before it starts.
No gossip exists between the gateways: they share a block directory for
weights, and learn each other's heads only from the chain.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from evm_rig import (
    CHAIN_ID,
    DEV_KEY,
    Anvil,
    deploy_contract,
    rig_missing_reason,
)
from support import GatewayProcess, publish_readings, publisher, wait_for, write_config
from web3 import Web3

from gateway.peer.cid import cid_of
from gateway.peer.identity import Identity
from gateway.peer.ledgers import binding_message, evmkey
from gateway.peer.ledgers.evm import load_artifact
from gateway.rigs.broker import PrivateBroker

pytestmark = [pytest.mark.evm, pytest.mark.timeout(300)]
TRAINING = {"enabled": True, "period_s": 1.0, "window": 4, "hidden_units": 8, "epochs": 3,
            "min_windows": 16}


def _gateways(tmp_path: Path, broker: PrivateBroker, prefix: str, anvil: Anvil,
              gateway_process: type[GatewayProcess], n: int = 3) -> list[GatewayProcess]:
    contract = deploy_contract(anvil)
    blocks = tmp_path / "blocks"
    blocks.mkdir()
    out = []
    for i in range(n):
        directory = tmp_path / f"gw{i}"
        (directory / "data").mkdir(parents=True)
        key = directory / "data" / evmkey.KEY_FILE
        evmkey.write_key(key, "0x" + secrets.token_hex(32))
        anvil.fund(evmkey.load_key(key).address)
        config = write_config(
            directory, broker, f"{prefix}{i}", gateway={"id": f"gw{i}"},
            mqtt={"client_id": f"gw-{prefix}-{i}"}, training=TRAINING,
            peer={"enabled": True, "session": prefix, "blocks_dir": str(blocks),
                  "transport": "ledger", "round_interval_s": 1.0,
                  "announce_interval_s": 0.5, "fetch_timeout_s": 2.0},
            ledger={"kind": "iota-evm", "rpc_url": anvil.url, "chain_id": CHAIN_ID,
                    "contract": contract, "confirmations": 0, "receipt_timeout_s": 20.0})
        out.append(gateway_process(config))
    return out


def _feed(broker: PrivateBroker, prefix: str, n: int) -> None:
    client = publisher(broker, f"pub-{prefix}")
    t0 = int(time.time()) - 1000
    for i in range(n):
        publish_readings(client, f"{prefix}{i}", f"board{i}", 200, t0=t0 + 5 * i)
    client.disconnect()


def _contract(anvil: Anvil, address: str) -> Any:
    w3 = Web3(Web3.HTTPProvider(anvil.url))
    return w3, w3.eth.contract(address=Web3.to_checksum_address(address),
                               abi=load_artifact()["abi"])


def _send(w3: Any, contract: Any, key: str, *args: Any) -> None:
    account = Account.from_key(key)
    tx = contract.functions.announce(*args).build_transaction({
        "from": account.address, "chainId": CHAIN_ID,
        "nonce": w3.eth.get_transaction_count(account.address, "pending")})
    signed = account.sign_transaction(tx)
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(signed.raw_transaction), timeout=20)
    assert receipt["status"] == 1


def test_three_gateways_find_each_other_on_the_chain_and_refuse_forgeries(
    tmp_path: Path, broker: PrivateBroker, prefix: str, anvil: Anvil,
    gateway_process: type[GatewayProcess],
) -> None:
    gateways = _gateways(tmp_path, broker, prefix, anvil, gateway_process)
    for gw in gateways:
        gw.start()
    _feed(broker, prefix, len(gateways))
    clients = [httpx.Client(base_url=gw.url or "", timeout=10) for gw in gateways]
    ids = [c.get("/api/peers").json()["self_id"] for c in clients]

    def knows_all(i: int) -> bool:
        items = clients[i].get("/api/peers").json()["items"]
        verified = {p["peer_id"] for p in items
                    if not p["is_self"] and p.get("last_round") is not None}
        return verified == set(ids) - {ids[i]}

    for i in range(len(gateways)):
        wait_for(lambda i=i: knows_all(i), timeout=150, what=f"gw{i} verifying both others")

    def fused(i: int) -> bool:
        rounds = clients[i].get("/api/rounds", params={"peer": ids[i]}).json()
        return any(r.get("fused_peers") for r in rounds)

    for i in range(len(gateways)):
        wait_for(lambda i=i: fused(i), timeout=60, what=f"gw{i} fusing a model found on chain")
    ledger = clients[0].get("/api/ledger").json()
    assert ledger["kind"] == "iota-evm" and ledger["enabled"] and ledger["transport"]
    assert {a["peer_id"] for a in ledger["items"]} == set(ids)
    assert all(a["tx"].startswith("0x") and a["block"] > 0 for a in ledger["items"])
    own = [a for a in ledger["items"] if a["is_self"]]
    assert [a["round"] for a in own] == list(range(len(own)))  # every round, once, in order
    rows = clients[0].get("/api/rounds").json()
    marked = {r["entry_cid"] for r in rows if r["anchored"]}
    assert marked and marked <= {a["entry_cid"] for a in ledger["items"]}
    assert {r["peer_id"] for r in rows if r["anchored"]} == set(ids)
    metrics = clients[0].get("/metrics").text
    gas = [line for line in metrics.splitlines()
           if line.startswith("learnae_ledger_gas_per_announcement ")]
    assert gas and 25_000 < float(gas[0].split()[1]) < 80_000
    assert "learnae_ledger_fees_wei_total" in metrics
    assert "learnae_peer_bytes_total{direction=\"gossip_out\"}" not in metrics

    # gw0 stops; then its keys are misused, and a stranger forges in its name
    gateways[0].terminate()
    w3, contract = _contract(anvil, ledger_contract(gateways[0]))
    first = next(a for a in ledger["items"] if a["peer_id"] == ids[0] and a["round"] == 0)
    gw0_data = gateways[0].config_path.parent / "data"
    gw0_evm = evmkey.load_key(gw0_data / evmkey.KEY_FILE)
    gw0_peer = Identity.load_or_create(gw0_data)
    w3_first = w3.eth.get_transaction(first["tx"])
    args = contract.decode_function_input(w3_first["input"])[1]
    # replayed: the very same announcement sent again by the same account
    _send(w3, contract, gw0_evm.key.hex(), args["session"], args["peerId"], args["round"],
          args["entryCid"], args["bindingSig"])
    # equivocation: a second, properly bound entry for gw0's round 0
    other = cid_of(b"another history")
    sig = gw0_peer.sign(binding_message(CHAIN_ID, contract.address, prefix, 0, other,
                                        gw0_evm.address))
    _send(w3, contract, gw0_evm.key.hex(), prefix, ids[0], 0, other, sig)
    # forged: gw0's name with a stranger's signature, sent by a stranger
    mallory = Identity.generate()
    forged = cid_of(b"forged")
    sender = Account.from_key(DEV_KEY).address
    bad = mallory.sign(binding_message(CHAIN_ID, contract.address, prefix, 999, forged, sender))
    _send(w3, contract, DEV_KEY, prefix, ids[0], 999, forged, bad)

    for i in (1, 2):
        def refused(i: int = i) -> Any:
            doc = clients[i].get("/api/ledger").json()
            want = {"replayed_announcement": 1, "equivocation": 1, "bad_binding": 1}
            return doc if all(doc["rejected"].get(k) == v for k, v in want.items()) else None

        doc = wait_for(refused, timeout=30, what=f"gw{i} refusing the three announcements")
        assert doc["forked_peers"] == [ids[0]]
        (evidence,) = doc["evidence"]
        assert evidence["round"] == 0
        assert [e["entry_cid"] for e in evidence["entries"]] == [first["entry_cid"], other]
        peers = {p["peer_id"]: p for p in clients[i].get("/api/peers").json()["items"]}
        assert peers[ids[0]]["rejected"] == {"replayed_announcement": 1, "equivocation": 1}
        metrics = clients[i].get("/metrics").text
        assert 'learnae_ledger_rejected_total{reason="bad_binding"} 1.0' in metrics
        assert "learnae_ledger_equivocations_total 1.0" in metrics
        # the forged round 999 hid nothing: gw0's genuine head is still what is known
        assert peers[ids[0]]["claimed_round"] == peers[ids[0]]["last_round"]
    for c in clients:
        c.close()


def ledger_contract(gw: GatewayProcess) -> str:
    import tomllib

    return str(tomllib.loads(gw.config_path.read_text())["ledger"]["contract"])


def _own_rounds_on_chain(anvil: Anvil, contract_address: str,
                         peer_id: str) -> list[tuple[int, str]]:
    """(round, tx) of every announcement naming ``peer_id``, in chain order."""
    w3, contract = _contract(anvil, contract_address)
    event = contract.events.Announced()
    logs = w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest", "address": contract.address,
                            "topics": [event.topic, None, Web3.keccak(text=peer_id)]})
    out = []
    for item in logs:
        args = event.process_log(item)["args"]
        out.append((int(args["round"]), "0x" + bytes(item["transactionHash"]).hex()))
    return out


def _journal(gw: GatewayProcess) -> dict[str, Any]:
    import json

    path = gw.config_path.parent / "data" / "ledger_journal.json"
    return dict(json.loads(path.read_text())) if path.exists() else {}


def test_sigkill_during_an_announcement_loses_none_and_sends_none_twice(
    tmp_path: Path, broker: PrivateBroker, prefix: str, anvil: Anvil,
    gateway_process: type[GatewayProcess],
) -> None:
    (gw,) = _gateways(tmp_path, broker, prefix, anvil, gateway_process, n=1)
    gw.start()
    _feed(broker, prefix, 1)
    client = httpx.Client(base_url=gw.url or "", timeout=10)
    peer_id = client.get("/api/peers").json()["self_id"]
    contract = ledger_contract(gw)
    wait_for(lambda: len(_own_rounds_on_chain(anvil, contract, peer_id)) >= 2, timeout=120,
             what="two rounds announced")
    anvil.rpc("evm_setAutomine", False)  # the next announcement waits for its receipt

    def awaiting() -> list[dict[str, Any]]:
        mined = {tx for _, tx in _own_rounds_on_chain(anvil, contract, peer_id)}
        # a journaled transaction that is not mined (one sent just before automine was
        # turned off may still be in the journal for a moment, already mined)
        return [p for p in _journal(gw).get("pending", []) if p["tx"] not in mined]

    pending = wait_for(awaiting, timeout=60, what="an announcement awaiting its receipt")
    gw.kill()  # SIGKILL while the receipt is awaited
    client.close()
    (stuck,) = pending
    assert stuck["tx"] not in {tx for _, tx in _own_rounds_on_chain(anvil, contract, peer_id)}
    gw.start()
    anvil.rpc("evm_setAutomine", True)
    anvil.mine(1)
    wait_for(lambda: max(r for r, _ in _own_rounds_on_chain(anvil, contract, peer_id))
             >= stuck["round"] + 2, timeout=120, what="rounds after the restart announced")
    on_chain = _own_rounds_on_chain(anvil, contract, peer_id)
    rounds = [r for r, _ in on_chain]
    assert rounds == list(range(len(rounds)))  # none lost, none twice, in order
    assert (stuck["round"], stuck["tx"]) in on_chain  # the journaled transaction itself
    gw.stop()


def test_evm_node_down_for_a_while_then_announcements_go_out(
    tmp_path: Path, broker: PrivateBroker, prefix: str, gateway_process: type[GatewayProcess],
) -> None:
    reason = rig_missing_reason()
    if reason:
        pytest.skip(reason)
    state = tmp_path / "chain-state.json"
    anvil = Anvil(tmp_path / "anvil", state=state).start()
    try:
        (gw,) = _gateways(tmp_path, broker, prefix, anvil, gateway_process, n=1)
        gw.start()
        _feed(broker, prefix, 1)
        client = httpx.Client(base_url=gw.url or "", timeout=10)
        peer_id = client.get("/api/peers").json()["self_id"]
        contract = ledger_contract(gw)
        wait_for(lambda: _own_rounds_on_chain(anvil, contract, peer_id), timeout=120,
                 what="a first round announced")
        anvil.stop()  # the chain is written to --state
        before = len(client.get("/api/rounds", params={"peer": peer_id}).json())

        def trained_meanwhile() -> bool:
            done = client.get("/api/rounds", params={"peer": peer_id}).json()
            return len(done) >= before + 2 and client.get("/api/ledger").json()["pending"] >= 2

        wait_for(trained_meanwhile, timeout=120, what="rounds trained while the chain was down")
        anvil = Anvil(tmp_path / "anvil", port=anvil.port, state=state).start()
        latest = max(r["round"] for r in client.get("/api/rounds",
                                                    params={"peer": peer_id}).json())
        wait_for(lambda: max(r for r, _ in _own_rounds_on_chain(anvil, contract, peer_id))
                 >= latest, timeout=120, what="the waiting announcements sent")
        rounds = [r for r, _ in _own_rounds_on_chain(anvil, contract, peer_id)]
        assert rounds == list(range(len(rounds)))
        wait_for(lambda: client.get("/api/ledger").json()["pending"] == 0, timeout=30,
                 what="the outbox empty again")
        client.close()
        gw.stop()
    finally:
        anvil.stop()
