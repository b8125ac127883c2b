"""Fixtures for the service tests: an API app over a real store file, gateway processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from support import TOKEN, BrokerPublisher, fill_store

from gateway.api import ServiceContext, StoreReader, create_app
from gateway.api.sources import RegistryModels
from gateway.config import config_from_dict
from gateway.rigs.broker import PrivateBroker


@pytest.fixture
def api_config(tmp_path: Path, broker: PrivateBroker, prefix: str) -> Any:
    return config_from_dict({
        "gateway": {"id": "gw-api", "data_dir": str(tmp_path / "data")},
        "mqtt": {"port": broker.port, "topic_prefix": prefix},
        "api": {"max_page": 500, "max_body_bytes": 4096, "cache_ms": 0},
    }, env={})


@pytest.fixture
def api_store(api_config: Any) -> dict[str, Any]:
    """A real store file: dev-a with 150 readings (anomaly at 3), dev-b with 5."""
    return fill_store(api_config.db_path, {"dev-a": 150, "dev-b": 5}, anomalies=(3,))


@pytest.fixture
def api_client(api_config: Any, api_store: Any, broker: PrivateBroker) -> Iterator[TestClient]:
    publisher = BrokerPublisher(broker)
    context = ServiceContext(
        config=api_config,
        token=TOKEN,
        store=StoreReader(api_config.db_path),
        publisher=publisher,
        models=RegistryModels(api_config.db_path),
        registry=CollectorRegistry(),
        parts=lambda: ["ingest", "api"],
    )
    with TestClient(create_app(context)) as client:
        yield client
    context.store.close()
    publisher.close()
