"""Fixtures for the ingest tests (``gateway_process`` comes from tests/conftest.py)."""
