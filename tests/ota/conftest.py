"""Fixtures for the OTA tests: a built bundle, a board with its key, a pusher."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.firmware.build import build_firmware
from gateway.ota import KeyStore, OtaPush, build_bundle
from gateway.rigs.board import Board
from tests.firmware.conftest import write_config


@pytest.fixture(scope="session")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return build_bundle(tmp_path_factory.mktemp("bundle"))


@pytest.fixture(scope="session")
def factory_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_firmware(tmp_path_factory.mktemp("factory"), host=True)


def make_board_dir(root: Path, port: int, prefix: str, device: str, keys: KeyStore,
                   **config: Any) -> Path:
    """A board's flash: config.json and its ota.key (as `flash` installs them)."""
    d = root / device
    config.setdefault("period_ms", 20)
    config.setdefault("batch_size", 5)
    write_config(d, port, prefix, device=device, **config)
    (d / "ota.key").write_text(keys.create(device).hex())
    return d


@pytest.fixture
def boards(tmp_path: Path) -> Iterator[list[Board]]:
    made: list[Board] = []
    yield made
    for b in made:
        b.stop()


def pusher(port: int, prefix: str, **kw: Any) -> OtaPush:
    kw.setdefault("ack_timeout", 3.0)
    kw.setdefault("confirm_s", 30)
    return OtaPush(host="127.0.0.1", port=port, prefix=prefix, **kw)


def wait_file(path: Path, pred: Any = None, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            doc = json.loads(path.read_text())
            if pred is None or pred(doc):
                return doc
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"{path} never matched")
