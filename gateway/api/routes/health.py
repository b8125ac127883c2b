"""``GET /healthz``: is the service up, and which parts run."""

from __future__ import annotations

import time
from collections.abc import Mapping

from fastapi import APIRouter, Response

from gateway import __version__
from gateway.api.context import ModelsUnavailable
from gateway.api.deps import ContextDep
from gateway.api.schemas import Health, ModelPublic, Overview

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health,
            responses={503: {"model": Health, "description": "degraded; `reason` says why"}})
def healthz(context: ContextDep, response: Response) -> Health:
    """200 when the store is readable and ingest can take readings; 503 (same body, with a
    ``reason``) when the store cannot be read, the ingest writer cannot write it, or the
    ingest client is not connected to the broker."""
    reasons: list[str] = []
    try:
        context.store.get().devices()
    except Exception as exc:  # any store failure means unhealthy
        reasons.append(f"store not readable: {exc}")
    stats = {}
    if context.ingest_stats is not None:
        try:
            stats = {k: v for k, v in context.ingest_stats().items()
                     if isinstance(v, int | float | str | bool | None)}
        except Exception as exc:
            reasons.append(f"ingest stats failed: {exc}")
        reasons.extend(ingest_problems(stats))
    peer_store = _peer_store(context)
    if peer_store is not None and peer_store.get("over_bound"):
        reasons.append(
            f"peer content store uses {peer_store['bytes']} bytes, above "
            f"peer.max_store_bytes = {peer_store['bound']}"
        )
    if reasons:
        response.status_code = 503
    return Health(
        status="degraded" if reasons else "ok",
        reason="; ".join(reasons) or None,
        gateway=context.config.gateway.id,
        version=__version__,
        uptime_s=round(time.time() - context.started_at, 3),
        parts=context.parts(),
        ingest=stats,
        peer_store=peer_store,
    )


def _peer_store(context: ContextDep) -> dict[str, object] | None:
    """The peer's content store disk use, when the peer layer runs and has measured it."""
    status = getattr(context.peers, "store_status", None)
    if status is None:
        return None
    try:
        result = status()
    except Exception:  # the health answer must not fail because the peer part does
        return None
    return result if isinstance(result, dict) else None


def ingest_problems(stats: Mapping[str, object]) -> list[str]:
    """Why ingest cannot take readings now, from ``Ingestor.stats()``: the store cannot be
    written (nothing is acknowledged) or the MQTT client is not subscribed."""
    problems = []
    if stats.get("store") == "unavailable":
        problems.append(f"ingest store unavailable: {stats.get('store_error') or 'unknown error'}")
    if "subscribed" in stats and not stats["subscribed"]:
        problem = f"ingest not connected to the MQTT broker (state {stats.get('state')!r})"
        if stats.get("mqtt_error"):
            problem += f": {stats['mqtt_error']}"
        problems.append(problem)
    return problems


@router.get("/api/overview", response_model=Overview)
def overview(context: ContextDep, response: Response) -> Overview:
    """Service state, current model (or null) and peers, for the dashboard."""
    from gateway.api.routes.peers import list_peers

    health = healthz(context, response)
    response.status_code = 200
    try:
        model = context.models.current() if context.models else None
        models = context.models.latest_per_device() if context.models else []
    except ModelsUnavailable:  # the header still loads; the status says degraded
        model, models = None, []
    # every field named: a response model built from another, as Anchored and TrainConfig
    # are elsewhere
    return Overview(
        status=health.status,
        reason=health.reason,
        gateway=health.gateway,
        version=health.version,
        uptime_s=health.uptime_s,
        parts=health.parts,
        model=ModelPublic.model_validate(model) if model else None,
        models=[ModelPublic.model_validate(m) for m in models],
        peers=list_peers(context),
    )
