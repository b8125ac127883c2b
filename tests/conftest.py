"""Fixtures every test area reuses: private Mosquitto brokers, anvil, the MicroPython port,
gateway processes."""

from __future__ import annotations

import importlib
import secrets
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from evm_rig import Anvil, running_anvil
from gateway_rig import GatewayProcess

from gateway.rigs import micropython
from gateway.rigs.broker import PrivateBroker
from gateway.system import write_acl, write_password_file

REPO = Path(__file__).resolve().parent.parent

# Import paths from before the gateway's modules were grouped into packages by concern,
# for test modules that still use them: each old module name is the module that now
# holds its contents, and each old name in a command module is the one that now holds it.
MOVED_MODULES = {
    "gateway.broker": "gateway.rigs.broker",
    "gateway.clock": "gateway.integrations.clock",
    "gateway.devices": "gateway.system.devices",
    "gateway.micropython_host": "gateway.rigs.micropython",
    "gateway.ota.hostboard": "gateway.rigs.board",
}
MOVED_NAMES = {
    "gateway.commands.sim": {
        "AIRQUALITY": ("gateway.data.airquality", "AIRQUALITY_CSV"),
        "EXIT_REVALIDATED": ("gateway.rigs.board", "EXIT_REVALIDATED"),
        "EXIT_WATCHDOG": ("gateway.rigs.board", "EXIT_WATCHDOG"),
        "HOST_SHIMS": ("gateway.rigs.board", "HOST_SHIMS"),
        "install_board_file": ("gateway.rigs.board", "install_board_file"),
        "run_firmware": ("gateway.rigs.board", "run_firmware"),
    },
}


def _alias_moved() -> None:
    for old, new in MOVED_MODULES.items():
        sys.modules.setdefault(old, importlib.import_module(new))
    for module_name, names in MOVED_NAMES.items():
        module = importlib.import_module(module_name)
        for name, (home, attr) in names.items():
            if not hasattr(module, name):
                setattr(module, name, getattr(importlib.import_module(home), attr))


_alias_moved()


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateBroker]:
    """One anonymous broker for the whole session; tests use distinct topic prefixes."""
    with PrivateBroker(tmp_path_factory.mktemp("broker")) as running:
        yield running


@pytest.fixture
def prefix() -> str:
    """A topic prefix no other test uses, so tests can share the session broker."""
    return "t" + secrets.token_hex(4)


SecureBrokerFactory = Callable[[dict[str, str], dict[str, list[str]]], PrivateBroker]


@pytest.fixture
def secure_broker_factory(tmp_path: Path) -> Iterator[SecureBrokerFactory]:
    """Start a broker with a password file and ACL.

    ``users`` maps name -> password; ``acl`` maps name -> ACL lines such as
    ``"topic readwrite learnae/dev1/#"``.
    """
    started: list[PrivateBroker] = []

    def start(users: dict[str, str], acl: dict[str, list[str]]) -> PrivateBroker:
        directory = tmp_path / f"secure-broker-{len(started)}"
        directory.mkdir()
        password_file = directory / "passwd"
        acl_file = directory / "acl"
        write_password_file(password_file, users)
        write_acl(acl_file, acl)
        running = PrivateBroker(directory, password_file=password_file, acl_file=acl_file)
        started.append(running.start())
        return running

    yield start
    for running in started:
        running.close()


@pytest.fixture
def anvil(tmp_path: Path) -> Iterator[Anvil]:
    """A private anvil (IOTA EVM's chain id, on 127.0.0.1) for one test, stopped after it;
    the test is skipped where the EVM rig is not installed (``make evm-rig``)."""
    yield from running_anvil(tmp_path / "anvil")


@pytest.fixture
def run_micropython() -> Callable[..., object]:
    """``run_micropython(script, *args, heap="64k", ...)`` -> CompletedProcess."""
    return micropython.run


@pytest.fixture
def gateway_process() -> Iterator[type[GatewayProcess]]:
    """``gateway_process(config_path).start()``: every gateway started is stopped afterwards."""
    started: list[GatewayProcess] = []

    class Tracked(GatewayProcess):
        def start(self, timeout: float = 30.0) -> GatewayProcess:
            started.append(self)
            return super().start(timeout)

    yield Tracked
    for gw in started:
        gw.stop()
