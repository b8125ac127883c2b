"""What handlers depend on, as named ``Annotated`` aliases.

The API never owns the gateway's parts; it sees them through small ports held
in a ``ServiceContext`` (``gateway.api.context``, re-exported here): a read-only
store per thread, a publisher for retained messages (the ingestor's own MQTT
client), and sources of models, peers and rounds.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gateway.api.context import ModelSource, PeerSource, Publisher, ServiceContext, StoreReader

__all__ = ["ContextDep", "ModelSource", "PeerSource", "Publisher", "ServiceContext",
           "StoreReader", "TokenDep", "get_context", "require_token"]


async def get_context(request: Request) -> ServiceContext:
    # async: FastAPI would run a plain function in its thread pool, for nothing
    context: ServiceContext = request.app.state.context
    return context


ContextDep = Annotated[ServiceContext, Depends(get_context)]

_bearer = HTTPBearer(auto_error=False, description="token from the gateway's api-token file")


def require_token(
    context: ContextDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """401 without a bearer token, 403 with a wrong one."""
    metrics = context.api_metrics
    if credentials is None or not credentials.credentials:
        if metrics:
            metrics.auth_failures.labels("missing").inc()
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="this endpoint needs `Authorization: Bearer <token>` (see api.token_file)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if not secrets.compare_digest(credentials.credentials.encode(), context.token.encode()):
        if metrics:
            metrics.auth_failures.labels("wrong").inc()
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="the bearer token is not valid")


TokenDep = Annotated[None, Depends(require_token)]
