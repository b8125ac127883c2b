"""The gateway's HTTP API and dashboard (FastAPI); see docs/api.md."""

from gateway.api.app import create_app
from gateway.api.context import ServiceContext, StoreReader

__all__ = ["ServiceContext", "StoreReader", "create_app"]
