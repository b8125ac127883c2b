"""The ``iota`` (layer 1) adapter: golden bytes against the TypeScript SDK, and the
GraphQL requests it sends to a local endpoint.

Execution on an IOTA network is not verified here (no registry ships a layer-1
node): see docs/operations.md for the testnet steps.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from gateway.errors import LedgerUnavailable
from gateway.peer import Identity
from gateway.peer.cid import cid_of
from gateway.peer.entry import Entry
from gateway.peer.ledgers import LedgerLink, LedgerMetrics, binding_message
from gateway.peer.ledgers.iota import GasCoin, IotaLedger, IotaSettings, build_announcement

REPO = Path(__file__).resolve().parents[2]
TS_DIR = REPO / ".cache" / "iota-ts"
NODE = shutil.which("node") or "/usr/bin/node"
PACKAGE = "0x" + "ab" * 32
GAS = GasCoin("0x" + "11" * 32, 5, "4vJ9JU1bJJE96FWSJKvHsmmFADCg4gpZQff4P3bkLKi")


def _golden(case: dict[str, Any]) -> dict[str, Any]:
    if not (TS_DIR / "node_modules" / "@iota" / "iota-sdk" / "package.json").exists():
        pytest.skip(f"@iota/iota-sdk not installed in {TS_DIR} (run: make iota-ts)")
    done = subprocess.run(
        [NODE, str(REPO / "tools" / "iota" / "golden.mjs")],
        input=json.dumps(case), cwd=TS_DIR, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return dict(json.loads(done.stdout))


CASES = [
    ("07" * 32, "sess", 3, b"\x01\x02\x03", 1000, 10_000_000, 5),
    ("a5" * 32, "greenhouses-2026", 0, bytes(range(64)), 1000, 5_000_000, 1),
    ("3c" * 32, "s" * 64, 2**31 - 1, b"\xff" * 64, 750, 123_456_789, 2**40),
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("seed", "session", "rnd", "binding", "price", "budget", "version"), CASES)
def test_transaction_bytes_signature_and_digest_equal_the_typescript_sdks(
    seed: str, session: str, rnd: int, binding: bytes, price: int, budget: int, version: int
) -> None:
    peer = Identity.from_seed(seed.encode()).peer_id
    entry = cid_of(f"{session}/{rnd}".encode())
    gas = GasCoin(GAS.object_id, version, GAS.digest)
    ours = build_announcement(
        bytes.fromhex(seed), package=PACKAGE, session=session, peer=peer, rnd=rnd,
        entry_cid=entry, binding=binding, gas=gas, gas_price=price, gas_budget=budget,
    )
    theirs = _golden({
        "seed": seed, "package": PACKAGE, "session": session, "peer": peer, "round": rnd,
        "entry": entry, "binding": binding.hex(), "price": price, "budget": budget,
        "gas": {"objectId": gas.object_id, "version": str(version), "digest": gas.digest},
    })
    assert base64.b64encode(ours.tx_bytes).decode() == theirs["tx_bytes"]
    assert ours.signature == theirs["signature"]
    assert ours.digest == theirs["digest"]
    assert ours.sender == theirs["sender"]


class _Endpoint:
    """A local GraphQL endpoint: records each request, answers from ``replies`` by operation."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.replies: dict[str, Any] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                name = body["query"].split("(")[0].split()[-1]
                reply = outer.replies[name]
                data = json.dumps(reply(body) if callable(reply) else reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/graphql"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint() -> Iterator[_Endpoint]:
    running = _Endpoint()
    yield running
    running.close()


def _ledger(endpoint: _Endpoint, identity: Identity, **changes: Any) -> IotaLedger:
    values = {"graphql_url": endpoint.url, "package": PACKAGE, "chain_id": 0x6364AAD5,
              "max_gas_price": 2000, "retries": 0}
    values.update(changes)
    return IotaLedger(IotaSettings(**values), seed=b"\x07" * 32, identity=identity,
                      sleep=lambda s: None)


def _gas_reply(price: int = 1000, balance: int = 10**9) -> dict[str, Any]:
    return {"data": {"epoch": {"referenceGasPrice": str(price)}, "address": {"coins": {"nodes": [
        {"address": GAS.object_id, "version": str(GAS.version), "digest": GAS.digest,
         "coinBalance": str(balance)}]}}}}


def test_announce_sends_the_signed_transaction(endpoint: _Endpoint) -> None:
    key = Identity.generate()
    ledger = _ledger(endpoint, key)
    endpoint.replies["LearnaeGas"] = _gas_reply()
    endpoint.replies["LearnaeAnnounce"] = {"data": {"executeTransactionBlock": {
        "errors": None, "effects": {"status": "SUCCESS", "checkpoint": {"sequenceNumber": 77},
                                    "gasEffects": {"gasSummary": {
                                        "computationCost": "1000000", "storageCost": "2000000",
                                        "storageRebate": "500000"}}}}}}
    entry = Entry("s", key.peer_id, 4, cid_of(b"w"), (), 1)
    cid = cid_of(b"e4")
    receipt = ledger.announce(cid, entry)
    gas_request, execute = endpoint.requests
    assert gas_request["variables"] == {"owner": ledger.address}
    assert "referenceGasPrice" in gas_request["query"] and "coinBalance" in gas_request["query"]
    assert execute["query"].startswith("mutation LearnaeAnnounce")
    assert set(execute["variables"]) == {"txBytes", "signatures"}
    binding = key.sign(binding_message(0x6364AAD5, PACKAGE, "s", 4, cid, ledger.address))
    expected = build_announcement(b"\x07" * 32, package=PACKAGE, session="s", peer=key.peer_id,
                                  rnd=4, entry_cid=cid, binding=binding, gas=GAS,
                                  gas_price=1000, gas_budget=10_000_000)
    assert base64.b64decode(execute["variables"]["txBytes"]) == expected.tx_bytes
    assert execute["variables"]["signatures"] == [expected.signature]
    assert receipt.tx == expected.digest and receipt.position == (77, 0)
    assert receipt.fee_wei == 2_500_000 and receipt.gas_used == 1000


def test_gas_price_ceiling_and_empty_account_make_announcements_wait(
    endpoint: _Endpoint,
) -> None:
    key = Identity.generate()
    entry = Entry("s", key.peer_id, 0, cid_of(b"w"), (), 1)
    endpoint.replies["LearnaeGas"] = _gas_reply(price=5000)
    with pytest.raises(LedgerUnavailable, match=r"gas price 5000 exceeds ledger\.max_fee 2000"):
        _ledger(endpoint, key).announce(cid_of(b"e"), entry)
    endpoint.replies["LearnaeGas"] = _gas_reply(balance=10)
    with pytest.raises(LedgerUnavailable, match="has no coin of at least"):
        _ledger(endpoint, key).announce(cid_of(b"e"), entry)
    assert all("LearnaeAnnounce" not in r["query"] for r in endpoint.requests)


def test_announcements_are_paged_decoded_and_checked(endpoint: _Endpoint) -> None:
    key, mallory = Identity.generate(), Identity.generate()
    reader = _ledger(endpoint, Identity.generate())
    sender = "0x" + "cd" * 32
    cid = cid_of(b"entry")

    def event(cursor: str, who: Identity, session: str = "s") -> dict[str, Any]:
        sig = who.sign(binding_message(0x6364AAD5, PACKAGE, session, 2, cid, sender))
        return {"cursor": cursor, "node": {
            "sender": {"address": sender}, "timestamp": "2026-12-01T10:00:00.000Z",
            "json": {"session": session, "peer_id": key.peer_id, "round": "2",
                     "entry_cid": cid, "binding_sig": list(sig), "sender": sender}}}

    pages = {
        None: {"data": {"events": {"pageInfo": {"hasNextPage": True, "endCursor": "c2"},
                                   "edges": [event("c1", key), event("c2", key, "other")]}}},
        "c2": {"data": {"events": {"pageInfo": {"hasNextPage": False, "endCursor": "c4"},
                                   "edges": [event("c3", mallory),
                                             {"cursor": "c4", "node": {"json": {}}}]}}},
    }
    endpoint.replies["LearnaeEvents"] = lambda body: pages[body["variables"]["after"]]
    link = LedgerLink(reader, session="s", own_peer="", every_round=False, anchor_every=10,
                      reject=lambda *a: None, metrics=LedgerMetrics(CollectorRegistry()))
    (claim,) = link.poll()
    assert (claim.peer, claim.round, claim.head) == (key.peer_id, 2, cid)
    assert link.rejected == {"bad_binding": 1, "malformed_announcement": 1}
    (anchored,) = link.anchored_entries()
    assert anchored.time == 1796119200.0 and anchored.sender == sender
    requests = [r["variables"] for r in endpoint.requests]
    assert requests == [{"type": f"{PACKAGE}::announcements::Announced", "first": 50,
                         "after": None},
                        {"type": f"{PACKAGE}::announcements::Announced", "first": 50,
                         "after": "c2"}]
    endpoint.replies["LearnaeEvents"] = {"data": {"events": {
        "pageInfo": {"hasNextPage": False, "endCursor": None}, "edges": []}}}
    assert link.poll() == []  # the next poll starts after the last cursor read
    assert endpoint.requests[-1]["variables"]["after"] == "c4"
