"""The kubo rig's network-safety check refuses every config that could leave loopback.

kubo behaviour relied on: ``ipfs init --profile=test`` writes a JSON config file at
``$IPFS_PATH/config`` that the daemon reads at start; kubo >= 0.36 reports telemetry
unless ``IPFS_TELEMETRY=off``; kubo >= 0.38 resolves every ``"auto"`` value from the
network unless ``AutoConf.Enabled`` is false.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from ipfs_rig import KuboNode, check_config, kubo_missing_reason, safe_settings

from gateway.peer import UnsafeConfig
from gateway.rigs.kubo import set_path

ENV = {"IPFS_TELEMETRY": "off"}


def safe_config() -> dict[str, Any]:
    config: dict[str, Any] = {"Identity": {"PeerID": "12D3KooW", "PrivKey": "auto"}}
    for key, value in safe_settings(4101, 5101, 8101).items():
        set_path(config, key, value)
    return config


def test_the_safe_settings_pass() -> None:
    assert check_config(safe_config(), ENV) == {4101, 5101, 8101}


@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [
        ("Bootstrap", ["/dnsaddr/bootstrap.libp2p.io/p2p/Qm"], "Bootstrap"),
        ("Bootstrap", ["auto"], "Bootstrap"),
        ("Addresses.Swarm", ["/ip4/0.0.0.0/tcp/4101"], "0.0.0.0"),
        ("Addresses.Swarm", ["/ip4/127.0.0.1/udp/4101/quic-v1"], "Addresses.Swarm"),
        ("Addresses.Swarm", [], "Addresses.Swarm"),
        ("Addresses.API", "/ip4/192.168.1.2/tcp/5101", "192.168.1.2"),
        ("Addresses.Gateway", "/ip4/0.0.0.0/tcp/8080", "Addresses.Gateway"),
        ("Addresses.Gateway", "/ip4/127.0.0.1/tcp/0", "Addresses.Gateway"),
        ("Addresses.Announce", ["/ip4/203.0.113.7/tcp/4001"], "203.0.113.7"),
        ("Peering.Peers", [{"ID": "12D3", "Addrs": ["/ip4/10.0.0.2/tcp/4001"]}], "10.0.0.2"),
        ("Discovery.MDNS.Enabled", True, "MDNS"),
        ("Routing.Type", "auto", "Routing.Type"),
        ("Routing.Type", "dhtclient", "Routing.Type"),
        ("Routing.DelegatedRouters", ["auto"], "DelegatedRouters"),
        ("Routing.DelegatedRouters", ["https://cid.contact"], "cid.contact"),
        ("DNS.Resolvers", {".": "auto"}, "DNS.Resolvers"),
        ("Ipns.DelegatedPublishers", ["auto"], "DelegatedPublishers"),
        ("AutoConf.Enabled", True, "AutoConf.Enabled"),
        ("AutoConf.Enabled", None, "AutoConf.Enabled"),
        ("AutoNAT.ServiceMode", "enabled", "AutoNAT"),
        ("Swarm.DisableNatPortMap", False, "DisableNatPortMap"),
        ("Swarm.RelayClient.Enabled", True, "RelayClient"),
        ("Swarm.RelayService.Enabled", True, "RelayService"),
        ("Swarm.Transports.Network.Relay", True, "Network.Relay"),
        ("Pubsub.Enabled", False, "Pubsub.Enabled"),
    ],
)
def test_unsafe_settings_are_refused(key: str, value: object, needle: str) -> None:
    config = copy.deepcopy(safe_config())
    set_path(config, key, value)
    with pytest.raises(UnsafeConfig, match=needle):
        check_config(config, ENV)


@pytest.mark.parametrize("env", [{}, {"IPFS_TELEMETRY": "on"}])
def test_telemetry_must_be_off_in_the_daemon_environment(env: dict[str, str]) -> None:
    with pytest.raises(UnsafeConfig, match="IPFS_TELEMETRY"):
        check_config(safe_config(), env)


def test_ports_must_be_distinct_per_node() -> None:
    config = safe_config()
    set_path(config, "Addresses.API", "/ip4/127.0.0.1/tcp/4101")
    with pytest.raises(UnsafeConfig, match="not distinct"):
        check_config(config, ENV)
    with pytest.raises(UnsafeConfig, match="not distinct"):
        check_config(safe_config(), ENV, used_ports={5101})


needs_kubo = pytest.mark.skipif(
    kubo_missing_reason() is not None, reason=str(kubo_missing_reason())
)


@needs_kubo
def test_a_fresh_kubo_repo_configured_by_the_rig_passes(tmp_path: Path) -> None:
    """``ipfs init --profile=test`` plus the safety settings is a config the check accepts."""
    node = KuboNode(tmp_path, "n")
    node.init()
    assert check_config(node.read_config(), node.env) == {
        node.swarm_port,
        node.api_port,
        node.gateway_port,
    }


@needs_kubo
@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [
        ("Bootstrap", ["/ip4/104.131.131.82/tcp/4001/p2p/QmaCpDMGvV2BGH"], "104.131.131.82"),
        ("AutoConf.Enabled", True, "AutoConf.Enabled"),
    ],
)
def test_the_rig_refuses_to_start_a_node_whose_config_fails(
    tmp_path: Path, key: str, value: object, needle: str
) -> None:
    node = KuboNode(tmp_path, "n")
    node.init()
    config = node.read_config()
    set_path(config, key, value)
    node.write_config(config)  # as if someone edited the repo between init and start
    with pytest.raises(UnsafeConfig, match=needle):
        node.start()
    assert node.process is None
    assert not (node.root / "daemon.log").exists()  # nothing was spawned


@needs_kubo
def test_the_rig_refuses_a_daemon_environment_with_telemetry(tmp_path: Path) -> None:
    node = KuboNode(tmp_path, "n")
    node.env.pop("IPFS_TELEMETRY")
    with pytest.raises(UnsafeConfig, match="IPFS_TELEMETRY"):
        node.start()
    assert node.process is None



@needs_kubo
def test_the_build_script_reuses_a_built_kubo() -> None:
    """``tools/kubo/install.sh`` returns at once when its stamp matches the binary."""
    import subprocess
    import time

    from ipfs_rig import kubo_binary

    stamp = kubo_binary().parent.parent / ".installed"
    if not stamp.exists():
        pytest.skip(f"kubo at {kubo_binary()} was not built by tools/kubo/install.sh")
    repo = Path(__file__).resolve().parents[2]
    started = time.monotonic()
    done = subprocess.run(
        ["bash", str(repo / "tools" / "kubo" / "install.sh"), str(kubo_binary().parent.parent)],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "v0.43.1 already built" in done.stderr
    assert time.monotonic() - started < 10
    version = subprocess.run([str(kubo_binary()), "version", "--number"], capture_output=True,
                             text=True, timeout=30)
    assert version.stdout.strip() == "0.43.1"
