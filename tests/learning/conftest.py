"""Fixtures for the learning tests."""

from __future__ import annotations

import pytest
from learning_streams import Stream, sensor_stream


@pytest.fixture
def stream() -> Stream:
    return sensor_stream()
