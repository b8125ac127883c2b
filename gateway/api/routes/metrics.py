"""``GET /metrics``: Prometheus text exposition of the gateway's registry."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from gateway.api.deps import ContextDep

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}}})
def metrics(context: ContextDep) -> Response:
    registry = context.registry if context.registry is not None else REGISTRY
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
