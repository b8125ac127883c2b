"""[ledger] settings: every bad value is refused with the key and the value named."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config import ConfigError, config_from_dict

CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def _load(ledger: dict[str, Any], peer: dict[str, Any] | None = None) -> Any:
    return config_from_dict({"ledger": ledger, "peer": peer or {}}, env={})


def test_defaults_and_a_full_evm_section() -> None:
    assert _load({}).ledger.kind == "none"
    config = _load(
        {"kind": "iota-evm", "contract": CONTRACT, "max_fee": 20, "confirmations": 3},
        {"transport": "ledger"},
    )
    assert config.ledger.contract == CONTRACT and config.ledger.max_fee == 20.0
    assert config.ledger.anchor_every == 10 and config.peer.transport == "ledger"


@pytest.mark.parametrize(
    ("ledger", "message"),
    [
        ({"kind": "iota-l2"}, "ledger.kind = 'iota-l2' is not one of"),
        ({"kind": "iota", "contract": CONTRACT}, "is not a 0x + 64 hex address"),
        ({"kind": "iota"}, "ledger.contract = '' must be set when ledger.kind = 'iota'"),
        ({"rpc_url": "ftp://x"}, "ledger.rpc_url = 'ftp://x' is not an http(s) URL"),
        ({"rpc_url": "http://"}, "ledger.rpc_url = 'http://' is not an http(s) URL"),
        ({"chain_id": 0}, "ledger.chain_id = 0 must be a positive integer"),
        ({"chain_id": "8822"}, "ledger.chain_id = '8822' must be an integer"),
        ({"contract": "0x12"}, "ledger.contract = '0x12' is not a 0x + 40 hex address"),
        ({"contract": "0x" + "g" * 40}, "is not a 0x + 40 hex address"),
        ({"kind": "iota-evm"}, "ledger.contract = '' must be set"),
        ({"anchor_every": 0}, "ledger.anchor_every = 0 must be at least 1"),
        ({"max_fee": 0}, "ledger.max_fee = 0.0 gwei must be in"),
        ({"max_fee": -1}, "ledger.max_fee = -1 must not be negative"),
        ({"priority_fee": 500}, "ledger.priority_fee = 500.0 exceeds ledger.max_fee = 100.0"),
        ({"confirmations": 5000}, "ledger.confirmations = 5000 exceeds 1000"),
        ({"receipt_timeout_s": 0}, "ledger.receipt_timeout_s = 0.0 must be > 0"),
        ({"key_file": ""}, "ledger.key_file = '' must be a path string"),
        ({"colour": "red"}, "unknown key ledger.colour"),
    ],
)
def test_bad_values_are_named(ledger: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        _load(ledger)
    assert message in str(raised.value)


def test_an_iota_section_builds_the_layer1_adapter(tmp_path: object) -> None:
    from gateway.peer.factory import build_ledger
    from gateway.peer.identity import Identity
    from gateway.peer.ledgers import evmkey
    from gateway.peer.ledgers.iota import KEY_FILE, IotaLedger

    package = "0x" + "ab" * 32
    config = config_from_dict({
        "gateway": {"data_dir": str(tmp_path)},
        "ledger": {"kind": "iota", "contract": package, "rpc_url": "http://127.0.0.1:9/graphql",
                   "chain_id": 0x6364AAD5, "max_fee": 1500},
    }, env={})
    ledger = build_ledger(config, Identity.generate())
    assert isinstance(ledger, IotaLedger)
    assert ledger.settings.package == package and ledger.settings.max_gas_price == 1500
    key = evmkey.load_key(tmp_path / KEY_FILE)  # type: ignore[operator]
    assert ledger.seed == bytes(key.key)
    ledger.close()


def test_ledger_transport_needs_a_ledger() -> None:
    with pytest.raises(ConfigError, match=r"peer\.transport = 'ledger' needs a ledger"):
        _load({}, {"transport": "ledger"})


def test_a_ledger_without_its_extra_is_refused_naming_the_extra(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    import sys

    from gateway.errors import LedgerNotInstalled
    from gateway.peer import Identity
    from gateway.peer.factory import build_ledger

    config = config_from_dict({"gateway": {"data_dir": str(tmp_path)},
                               "ledger": {"kind": "iota-evm", "contract": CONTRACT}}, env={})
    identity = Identity.load_or_create(tmp_path)
    monkeypatch.setitem(sys.modules, "web3", None)  # as where the extra is not installed
    with pytest.raises(LedgerNotInstalled) as caught:
        build_ledger(config, identity)
    assert str(caught.value) == ("ledger.kind = 'iota-evm' needs the ledger extra (web3 not "
                                 "installed): pip install 'learnae-edge[ledger]'")


def test_with_the_extra_installed_the_check_passes() -> None:
    from gateway.peer.ledgers import require_ledger_extra
    from gateway.runtime.extras import missing_modules

    assert missing_modules("ledger") == []  # `make test` installs the extra
    require_ledger_extra("ledger.kind = 'iota'")


def test_the_service_refuses_to_start_a_ledger_without_its_extra(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Any, broker: Any, prefix: str) -> None:
    import sys

    from gateway.errors import ServiceError
    from gateway.service import GatewayService

    config = config_from_dict({
        "gateway": {"data_dir": str(tmp_path)},
        "mqtt": {"port": broker.port, "topic_prefix": prefix},
        "peer": {"enabled": True}, "api": {"enabled": False},
        "ledger": {"kind": "iota", "contract": "0x" + "ab" * 32}}, env={})
    monkeypatch.setitem(sys.modules, "iota_sdk", None)
    service = GatewayService(config)
    with pytest.raises(ServiceError) as caught:
        service.start()
    assert str(caught.value) == ("peer failed to start: ledger.kind = 'iota' needs the ledger "
                                 "extra (iota_sdk not installed): pip install "
                                 "'learnae-edge[ledger]'")
    assert service.parts() == []  # what had started (ingest, clock) was stopped again
