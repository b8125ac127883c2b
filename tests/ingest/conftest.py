"""Fixtures for the ingest tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .helpers import GatewayProcess


@pytest.fixture
def gateway_process() -> Iterator[type[GatewayProcess]]:
    """Factory for gateway processes; every one started is stopped afterwards."""
    started: list[GatewayProcess] = []

    class Tracked(GatewayProcess):
        def start(self, timeout: float = 30.0) -> GatewayProcess:
            started.append(self)
            return super().start(timeout)

    yield Tracked
    for gw in started:
        gw.stop()
