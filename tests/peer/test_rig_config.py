"""The rig's network-safety check refuses every config that could leave loopback."""

from __future__ import annotations

import copy

import pytest

from gateway.peer import UnsafeConfig

from .ipfs_rig import check_config, node_config


def test_the_rig_config_passes() -> None:
    assert check_config(node_config(4101, 5101)) == {4101, 5101}


@pytest.mark.parametrize(
    ("path", "value", "needle"),
    [
        (("Bootstrap",), ["/dnsaddr/bootstrap.libp2p.io/p2p/Qm"], "Bootstrap"),
        (("Addresses", "Swarm"), ["/ip4/0.0.0.0/tcp/4101"], "0.0.0.0"),
        (("Addresses", "API"), "/ip4/192.168.1.2/tcp/5101", "192.168.1.2"),
        (("Addresses", "Gateway"), "/ip4/127.0.0.1/tcp/8080", "Gateway"),
        (("Addresses", "Delegates"), ["/dns4/node0.delegate.ipfs.io/tcp/443/https"], "Delegates"),
        (("Discovery", "MDNS", "Enabled"), True, "MDNS"),
        (("Discovery", "webRTCStar", "Enabled"), True, "webRTCStar"),
        (("Routing", "Type"), "dhtclient", "Routing.Type"),
        (("Swarm", "DisableNatPortMap"), False, "DisableNatPortMap"),
    ],
)
def test_unsafe_settings_are_refused(path: tuple[str, ...], value: object, needle: str) -> None:
    config = copy.deepcopy(node_config(4101, 5101))
    target = config
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(UnsafeConfig, match=needle):
        check_config(config)


def test_ports_must_be_distinct_per_node() -> None:
    with pytest.raises(UnsafeConfig, match="not distinct"):
        check_config(node_config(4101, 4101))
    with pytest.raises(UnsafeConfig, match="not distinct"):
        check_config(node_config(4102, 5102), used_ports={5102})
