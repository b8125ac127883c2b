"""Python side of the EVM test rig: anvil on 127.0.0.1, the contract deployed, accounts funded.

anvil is the binary shipped inside npm ``@foundry-rs/anvil`` (installed by
``tools/evm/install.sh`` into ``.cache/evm`` or ``$LEARNAE_EVM_RIG``); it is
always started with ``--host 127.0.0.1 --chain-id 8822`` on a free port and
stopped by signalling its own PID. ``--state FILE`` keeps the chain across a
stop and start (the "EVM node down for a while" tests).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
CHAIN_ID = 8822
NODE = shutil.which("node") or "/usr/bin/node"
# anvil's first dev account (a well-known test key, funded with 10,000 ETH on anvil only)
DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def rig_dir() -> Path:
    return Path(os.environ.get("LEARNAE_EVM_RIG", REPO / ".cache" / "evm"))


def anvil_binary() -> Path | None:
    found = sorted((rig_dir() / "node_modules" / "@foundry-rs").glob("anvil-linux-*/bin/anvil"))
    return found[0] if found else None


def rig_missing_reason() -> str | None:
    if anvil_binary() is None:
        return f"anvil not installed in {rig_dir()} (run: make evm-rig)"
    if not (rig_dir() / "node_modules" / "solc" / "package.json").exists():
        return f"solc not installed in {rig_dir()} (run: make evm-rig)"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Anvil:
    """One anvil process on 127.0.0.1 (chain id 8822)."""

    def __init__(self, workdir: Path, *, port: int | None = None, state: Path | None = None):
        self.workdir = workdir
        self.port = port or free_port()
        self.state = state
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Anvil:
        binary = anvil_binary()
        assert binary is not None, rig_missing_reason()
        args = [str(binary), "--host", "127.0.0.1", "--port", str(self.port)]
        args += ["--chain-id", str(CHAIN_ID), "--silent"]
        if self.state is not None:
            args += ["--state", str(self.state)]
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log = open(self.workdir / f"anvil-{self.port}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"anvil exited with {self.proc.returncode}; see {self.log.name}")
            try:
                if self.rpc("eth_chainId") == hex(CHAIN_ID):
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"anvil on port {self.port} did not answer within {timeout} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)  # anvil writes --state on SIGTERM
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None
        if hasattr(self, "log"):
            self.log.close()

    def rpc(self, method: str, *params: Any) -> Any:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        reply = httpx.post(self.url, json=body, timeout=10).json()
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def fund(self, address: str, wei: int = 10**20) -> None:
        self.rpc("anvil_setBalance", address, hex(wei))

    def mine(self, blocks: int = 1) -> None:
        self.rpc("anvil_mine", hex(blocks))

    def block_number(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)


def running_anvil(directory: Path) -> Iterator[Anvil]:
    """For a fixture: anvil in ``directory``, stopped afterwards (skips the test when the
    EVM rig is not installed)."""
    reason = rig_missing_reason()
    if reason:
        pytest.skip(reason)
    node = Anvil(directory).start()
    try:
        yield node
    finally:
        node.stop()


def deploy_contract(anvil: Anvil) -> str:
    from eth_account import Account

    from gateway.peer.ledgers.evm import deploy

    address, _ = deploy(
        anvil.url, Account.from_key(DEV_KEY), chain_id=CHAIN_ID, max_fee_wei=100 * 10**9
    )
    return address
