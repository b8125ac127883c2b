"""``bench ledger``: announcements per second, gas, and head discovery through the ledger
against gossip, on this machine.

An anvil chain (chain id 8822, 127.0.0.1, a free port; ``--block-time`` 0 mines
each transaction at once) gets the Announcements contract. Two PeerNodes share
an in-memory content store; peer A publishes a round, peer B finds its head and
fuses it. Discovery latency is from the start of A's round to the end of B's
fusion that includes it: through the ledger (``transport = "ledger"``: A's
transaction mined, B's next poll of confirmed blocks, fetch, fuse), and through
gossip over the same loop (UDP on loopback; IPFS pubsub when ``--ipfs-api A,B``
names two kubo RPC endpoints, else ``pubsub`` is null). The trainer does almost
nothing, so the figures are the channels' own latency. Throughput: ``--announcements``
sequential announcements, each awaited to its receipt.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from gateway.rigs.ports import free_port

CHAIN_ID = 8822
DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # anvil's own


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--announcements", type=int, default=20, help="for the throughput")
    parser.add_argument("--samples", type=int, default=5, help="discovery measurements each")
    parser.add_argument("--block-time", type=float, default=0.0, help="anvil block time, s")
    parser.add_argument("--confirmations", type=int, default=0)
    parser.add_argument("--poll-s", type=float, default=0.05, help="how often B reads")
    parser.add_argument("--anvil", type=Path, default=None, help="anvil binary (default: rig)")
    parser.add_argument("--ipfs-api", default="", help="two kubo RPC URLs A,B for pubsub")


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _anvil_binary(given: Path | None) -> Path:
    if given is not None:
        return given
    default = Path(__file__).resolve().parents[2] / ".cache" / "evm"
    root = Path(os.environ.get("LEARNAE_EVM_RIG", default))
    found = sorted((root / "node_modules" / "@foundry-rs").glob("anvil-linux-*/bin/anvil"))
    if not found:
        raise SystemExit(f"anvil not found under {root} (run: make evm-rig, or pass --anvil)")
    return found[0]


class _Trainer:
    def __init__(self, step: float) -> None:
        self.step = step

    def initial_weights(self) -> dict[str, np.ndarray]:
        return {"w": np.zeros((8, 8), np.float32), "b": np.zeros(8, np.float32)}

    def train(self, weights: dict[str, np.ndarray]) -> Any:
        from gateway.peer.trainer import TrainOutcome

        return TrainOutcome({k: v + self.step for k, v in weights.items()}, 10, {"loss": 1.0})


def _pair(transports: tuple[Any, Any], ledgers: list[tuple[Any, Any]] | None) -> list[Any]:
    """Peers A and B on one store; with ``ledgers`` ((ledger, identity) each) heads come
    from the ledger only (``transport = "ledger"``), else from the given gossip transports."""
    from prometheus_client import CollectorRegistry

    from gateway.config import PeerSection
    from gateway.peer import Identity, MemoryStore, PeerNode

    store = MemoryStore()
    settings = PeerSection(enabled=True, session="bench", wire_dtype="float32",
                           staleness_half_life=0.0, fetch_timeout_s=2.0,
                           transport="udp" if ledgers is None else "ledger")
    nodes = []
    for i, transport in enumerate(transports):
        ledger, identity = (None, Identity.generate()) if ledgers is None else ledgers[i]
        nodes.append(PeerNode(identity=identity, store=store, transport=transport,
                              trainer=_Trainer(1.0 + i), settings=settings,
                              registry=CollectorRegistry(), seed=i, ledger=ledger))
    return nodes


def _discover(a: Any, b: Any, samples: int, poll_s: float, follow: bool) -> list[float]:
    out = []
    for _ in range(samples):
        started = time.monotonic()
        info = a.run_round()
        deadline = started + 60
        while time.monotonic() < deadline:
            if follow:
                b.follow_ledger()
            rec = b.directory.records.get(a.peer_id)
            if rec is not None and (info.entry_cid in rec.claims or rec.head == info.entry_cid):
                break
            time.sleep(poll_s)
        else:
            raise SystemExit(f"peer B did not see round {info.round} within 60 s")
        fused = b.run_round()
        if a.peer_id not in fused.fused_peers:
            raise SystemExit(f"peer B saw round {info.round} but did not fuse it")
        out.append(time.monotonic() - started)
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    from gateway.peer.ledgers import require_ledger_extra

    require_ledger_extra("bench ledger")
    from eth_account import Account

    from gateway.peer import Identity
    from gateway.peer.cid import cid_of
    from gateway.peer.entry import Entry
    from gateway.peer.ledgers.evm import EvmLedger, EvmSettings, deploy
    from gateway.peer.transport import NullTransport, UdpTransport

    for flag, value in (("--announcements", args.announcements), ("--samples", args.samples)):
        if value < 1:
            raise SystemExit(f"{flag} {value}: must be at least 1")
    work = Path(tempfile.mkdtemp(prefix="learnae-bench-ledger-"))
    port = free_port()
    cmd = [str(_anvil_binary(args.anvil)), "--host", "127.0.0.1", "--port", str(port),
           "--chain-id", str(CHAIN_ID), "--silent"]
    if args.block_time > 0:
        cmd += ["--block-time", str(args.block_time)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        from web3 import Web3

        w3 = Web3(Web3.HTTPProvider(url))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if w3.eth.chain_id == CHAIN_ID:
                    break
            except Exception:
                time.sleep(0.1)
        dev = Account.from_key(DEV_KEY)
        contract, _ = deploy(url, dev, chain_id=CHAIN_ID, max_fee_wei=100 * 10**9)
        _say(f"anvil on {url}, contract {contract}")

        def ledger(name: str) -> tuple[Any, Any]:
            identity, account = Identity.generate(), Account.create()
            fund = [account.address, hex(10**20)]
            w3.provider.make_request("anvil_setBalance", fund)  # type: ignore[arg-type]
            settings = EvmSettings(rpc_url=url, chain_id=CHAIN_ID, contract=contract,
                                   max_fee_wei=100 * 10**9, confirmations=args.confirmations,
                                   receipt_timeout_s=60.0)
            (work / name).mkdir()
            return EvmLedger(settings, account=account, identity=identity,
                             state_dir=work / name), identity

        # throughput and gas
        sender, identity = ledger("throughput")
        gas, fees = [], []
        started = time.monotonic()
        for i in range(args.announcements):
            entry = Entry("bench", identity.peer_id, i, cid_of(f"w{i}".encode()), (), 1)
            receipt = sender.announce(cid_of(f"e{i}".encode()), entry)
            gas.append(receipt.gas_used)
            fees.append(receipt.fee_wei)
        elapsed = time.monotonic() - started
        _say(f"{args.announcements} announcements in {elapsed:.2f} s")

        # discovery through the ledger
        a, b = _pair((NullTransport(), NullTransport()), [ledger("a"), ledger("b")])
        ledger_times = _discover(a, b, args.samples, args.poll_s, follow=True)
        _say(f"ledger discovery {[round(t, 3) for t in ledger_times]}")
        # discovery through gossip: UDP on loopback
        pa, pb = free_port(), free_port()
        ua = UdpTransport(port=pa, peers=[("127.0.0.1", pb)])
        ub = UdpTransport(port=pb, peers=[("127.0.0.1", pa)])
        try:
            a, b = _pair((ua, ub), None)
            udp_times = _discover(a, b, args.samples, args.poll_s / 10, follow=False)
        finally:
            ua.close()
            ub.close()
        _say(f"udp gossip discovery {[round(t, 3) for t in udp_times]}")
        pubsub: float | None = None
        if args.ipfs_api:
            from gateway.peer.ipfs import IpfsPubsubTransport

            api_a, api_b = (u.strip() for u in args.ipfs_api.split(","))
            ta, tb = IpfsPubsubTransport(api_a), IpfsPubsubTransport(api_b)
            try:
                a, b = _pair((ta, tb), None)
                time.sleep(1.0)  # subscriptions settle
                pubsub_times = _discover(a, b, args.samples, 0.005, follow=False)
                _say(f"ipfs pubsub discovery {[round(t, 3) for t in pubsub_times]}")
                pubsub = statistics.median(pubsub_times)
            finally:
                ta.close()
                tb.close()
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        shutil.rmtree(work, ignore_errors=True)
    return {
        "announcements_per_s": round(args.announcements / elapsed, 2),
        "gas_per_announcement": round(statistics.mean(gas)),
        "fee_wei_per_announcement": round(statistics.mean(fees)),
        "discovery_p50_s": {
            "ledger": round(statistics.median(ledger_times), 4),
            "pubsub": None if pubsub is None else round(pubsub, 4),
            "udp": round(statistics.median(udp_times), 4),
        },
        "samples": args.samples,
        "announcements": args.announcements,
        "block_time_s": args.block_time,
        "confirmations": args.confirmations,
        "chain_id": CHAIN_ID,
    }
