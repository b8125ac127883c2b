"""The API's bearer token: from the config, from a file, or made once and kept in a file."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from gateway.config import GatewayConfig
from gateway.errors import ServiceError

__all__ = ["ensure_token", "token_path"]

log = logging.getLogger("learnae.api")


def ensure_token(config: GatewayConfig) -> str:
    """The API bearer token: ``api.token``, else ``api.token_file``, else a file
    created on first start as ``<data_dir>/api-token`` with mode 0600."""
    if config.api.token:
        return config.api.token
    path = config.api.token_file
    if path is not None:
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ServiceError(
                f"api.token_file = {str(path)!r} cannot be read: {exc.strerror}"
            ) from exc
        if not token:
            raise ServiceError(f"api.token_file = {str(path)!r} is empty")
        return token
    path = token_path(config)
    if path.exists():
        token = path.read_text(encoding="utf-8").strip()
        if token:
            return token
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    os.chmod(path, 0o600)
    log.info("created API token file %s (mode 0600)", path)
    return token


def token_path(config: GatewayConfig) -> Path:
    return config.api.token_file or config.gateway.data_dir / "api-token"
