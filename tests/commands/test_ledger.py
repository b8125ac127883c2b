"""``learnae-gateway ledger deploy|address`` against a real anvil."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from evm_rig import CHAIN_ID, DEV_KEY, REPO, Anvil

from gateway.peer.ledgers import evmkey
from gateway.peer.ledgers.iota import sender_of

pytestmark = [pytest.mark.evm, pytest.mark.timeout(120)]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", "ledger", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=100)


def test_deploy_then_the_gateway_address(anvil: Anvil, tmp_path: Path) -> None:
    key = tmp_path / "deployer.key"
    evmkey.write_key(key, DEV_KEY)
    done = _cli("deploy", "--rpc-url", anvil.url, "--key-file", str(key), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["chain_id"] == CHAIN_ID and result["gas_used"] > 100_000
    code = anvil.rpc("eth_getCode", result["contract"], "latest")
    assert len(code) > 100  # the runtime bytecode is there
    config = tmp_path / "gateway.toml"
    config.write_text(f'[gateway]\ndata_dir = "{tmp_path / "data"}"\n')
    shown = _cli("address", "--config", str(config), "--json")
    assert shown.returncode == 0, shown.stderr
    address = json.loads(shown.stdout.strip().splitlines()[-1])["address"]
    assert address == evmkey.load_key(tmp_path / "data" / evmkey.KEY_FILE).address
    layer1 = tmp_path / "iota.toml"
    layer1.write_text(f'[gateway]\ndata_dir = "{tmp_path / "data"}"\n[ledger]\nkind = "iota"\n'
                      f'contract = "0x{"ab" * 32}"\n')
    shown = _cli("address", "--config", str(layer1), "--json")
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout.strip().splitlines()[-1])
    seed = evmkey.load_key(tmp_path / "data" / "ledger_iota.key").key
    assert doc == {"address": sender_of(bytes(seed)), "kind": "iota"}


def test_deploy_refuses_a_wrong_chain_and_an_exposed_key(anvil: Anvil, tmp_path: Path) -> None:
    key = tmp_path / "deployer.key"
    evmkey.write_key(key, DEV_KEY)
    wrong = _cli("deploy", "--rpc-url", anvil.url, "--key-file", str(key), "--chain-id", "1")
    assert wrong.returncode == 2 and "has chain id 8822, expected 1" in wrong.stderr
    key.chmod(0o644)
    exposed = _cli("deploy", "--rpc-url", anvil.url, "--key-file", str(key))
    assert exposed.returncode == 2 and "must be 600" in exposed.stderr
