"""The committed contract artifact is exactly what the pinned solc makes of the source."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from evm_rig import NODE, REPO, rig_dir, rig_missing_reason

from gateway.peer.ledgers.evm import ARTIFACT, load_artifact

pytestmark = pytest.mark.evm
SOURCE = ARTIFACT.with_name("Announcements.sol")


@pytest.mark.timeout(120)
def test_artifact_recompiles_byte_for_byte() -> None:
    reason = rig_missing_reason()
    if reason:
        pytest.skip(reason)
    done = subprocess.run(
        [NODE, str(REPO / "tools" / "evm" / "compile.mjs"), str(SOURCE)],
        cwd=rig_dir(),  # solc resolves from the rig's node_modules
        capture_output=True,
        timeout=100,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert done.stdout == ARTIFACT.read_bytes()


def test_artifact_is_the_pinned_compiler_for_paris() -> None:
    artifact = load_artifact()
    assert artifact["compiler"].startswith("solc 0.8.37+")
    assert artifact["settings"]["evmVersion"] == "paris"
    names = {item.get("name") for item in artifact["abi"]}
    assert names == {"announce", "Announced"}
    assert Path(SOURCE).read_text().count("pragma solidity 0.8.37;") == 1
