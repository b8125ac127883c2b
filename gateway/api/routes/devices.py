"""Devices, their readings, and the retained config the gateway publishes to them."""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Path, Query, Response, status

from gateway.api.deps import ContextDep, TokenDep
from gateway.api.schemas import (
    INTEGER_KEYS,
    REMOTE_CONFIG_SCHEMA,
    ConfigAccepted,
    DevicePublic,
    ErrorDetail,
    Page,
    QuarantinePublic,
    SamplePublic,
    SamplesPage,
)
from shared.errors import ProtocolError
from shared.topics import check_device_id, topic

router = APIRouter(prefix="/api", tags=["devices"])

# shared.topics.check_device_id, as JSON Schema; documented only, so that the check
# itself stays the protocol's, whose message names the offending id
DEVICE_ID_SCHEMA = {"pattern": r"^[a-z0-9_-]{1,32}$"}
DeviceId = Annotated[str, Path(description="device id: 1-32 of a-z 0-9 - _",
                               json_schema_extra=DEVICE_ID_SCHEMA)]
NO_DEVICE: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorDetail, "description": "the gateway has not heard of the device"}}
Limit = Annotated[int, Query(ge=1, description="items per page (at most api.max_page)")]
Offset = Annotated[int, Query(ge=0)]


def device_id_of(device_id: str) -> str:
    try:
        return str(check_device_id(device_id))
    except ProtocolError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[{"loc": ["path", "device_id"], "msg": str(exc), "type": "value_error"}],
        ) from exc


def check_limit(context: ContextDep, limit: int) -> None:
    if limit > context.config.api.max_page:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[{"loc": ["query", "limit"],
                     "msg": f"limit {limit} exceeds api.max_page = {context.config.api.max_page}",
                     "type": "value_error"}],
        )


def device_public(info: Any) -> DevicePublic:
    return DevicePublic.model_validate(_device_dict(info))


@router.get("/devices", response_model=Page[DevicePublic])
async def list_devices(context: ContextDep, limit: Limit = 100, offset: Offset = 0) -> Response:
    """Every device the gateway has heard from, sorted by id.

    Served from the event loop (one SQLite read, well under a millisecond) and
    serialized once, without a second validation pass: this is the list every
    dashboard polls (see also the response cache in ``gateway.api.cache``).
    """
    check_limit(context, limit)
    devices = sorted(context.store.get().devices(), key=lambda d: d.id)
    items = [_device_dict(d) for d in devices[offset: offset + limit]]
    body = json.dumps({"items": items, "total": len(devices), "limit": limit, "offset": offset},
                      separators=(",", ":")).encode()
    return Response(body, media_type="application/json")


def _device_dict(info: Any) -> dict[str, Any]:
    return {"id": info.id, "stored": info.stored, "boots": info.boots,
            "last_seen": info.last_seen, "online": info.online, "firmware": info.firmware,
            "status": info.status, "duplicates": info.duplicates, "rejected": info.rejected}


@router.get("/devices/{device_id}", response_model=DevicePublic, responses=NO_DEVICE)
def get_device(context: ContextDep, device_id: DeviceId) -> DevicePublic:
    info = context.store.get().device(device_id_of(device_id))
    if info is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no device {device_id!r}")
    return device_public(info)


@router.get("/devices/{device_id}/samples", response_model=SamplesPage, responses=NO_DEVICE)
def list_samples(
    context: ContextDep,
    device_id: DeviceId,
    limit: Limit = 100,
    before_ts: Annotated[float | None, Query(description="only readings older than this")] = None,
) -> SamplesPage:
    """A device's readings, newest first; page backwards with ``next_before_ts``."""
    device_id = device_id_of(device_id)
    check_limit(context, limit)
    if before_ts is not None and not math.isfinite(before_ts):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[{"loc": ["query", "before_ts"], "msg": f"before_ts {before_ts!r} is not finite",
                     "type": "value_error"}],
        )
    store = context.store.get()
    if store.device(device_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no device {device_id!r}")
    rows = store.samples(device_id, limit=limit, before_ts=before_ts)
    items = [
        SamplePublic(
            ts=s.ts, boot=s.boot, seq=s.seq, anomaly=bool(s.anomaly),
            values={k: (None if v is None or not math.isfinite(v) else v)
                    for k, v in s.values.items()},
        )
        for s in rows
    ]
    next_before = items[-1].ts if len(items) == limit else None
    return SamplesPage(device=device_id, items=items, limit=limit, next_before_ts=next_before)


@router.put(
    "/devices/{device_id}/config",
    response_model=ConfigAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses={409: {"model": ErrorDetail,
                     "description": "a threshold names a channel the device has not reported"},
               422: {"description": "config rejected; the reason names the field"},
               503: {"model": ErrorDetail,
                     "description": "the gateway's MQTT client is not connected"}},
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": REMOTE_CONFIG_SCHEMA}}}},
)
def put_config(
    context: ContextDep,
    _: TokenDep,
    device_id: DeviceId,
    config: Annotated[dict[str, Any], Body(description="the keys to change")],
) -> ConfigAccepted:
    """Validate a device config and publish it retained on ``<prefix>/<id>/config``.

    The device applies it when it next connects; the retained message survives
    broker restarts (with persistence) and gateway restarts.
    """
    device_id = device_id_of(device_id)
    metrics = context.api_metrics
    # JSON Schema's integers include 5.0; the protocol's validator takes ints only
    doc = {k: int(v) if k in INTEGER_KEYS and isinstance(v, float) and v.is_integer() else v
           for k, v in config.items()}
    channels = _channels(context, device_id)
    named = doc.get("thresholds")
    named = [n for n in named if isinstance(n, str)] if isinstance(named, dict) else []
    try:
        # every check but the channels first: a malformed config is a 422 whatever it names
        validated = validate_config(doc, channels + [n for n in named if n not in channels])
    except ProtocolError as exc:
        metrics.config_pushes.labels("rejected").inc()
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[{"loc": ["body"], "msg": str(exc), "type": "value_error"}],
        ) from exc
    unknown = sorted(set(named) - set(channels))
    if unknown:
        metrics.config_pushes.labels("rejected").inc()
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"thresholds channel {unknown[0]!r} is not one of the channels device "
                   f"{device_id!r} reports ({', '.join(channels) or 'none yet'})")
    if context.publisher is None:
        metrics.config_pushes.labels("unavailable").inc()
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            detail="ingest is not running; cannot publish")
    payload = json.dumps(validated, separators=(",", ":"), sort_keys=True).encode()
    name = topic(context.config.mqtt.topic_prefix, device_id, "config")
    try:
        context.publisher.publish_retained(name, payload)
    except Exception as exc:
        metrics.config_pushes.labels("failed").inc()
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            detail=f"publishing to {name!r} failed: {exc}") from exc
    metrics.config_pushes.labels("published").inc()
    return ConfigAccepted(device=device_id, topic=name, bytes=len(payload))


def _channels(context: ContextDep, device_id: str) -> list[str]:
    """The channels a device has reported (thresholds may name only these)."""
    latest = context.store.get().samples(device_id, limit=1)
    return list(latest[0].values) if latest else []


def validate_config(doc: dict[str, Any], channels: list[str]) -> dict[str, Any]:
    """Check a remote config with the protocol's own validator (shared.config).

    Raises ProtocolError naming the field; returns the document to publish.
    """
    from gateway.api.sources import remote_config_validator

    result = remote_config_validator(channels)(doc)
    return result if isinstance(result, dict) else doc


@router.get("/quarantine", response_model=list[QuarantinePublic])
def list_quarantine(context: ContextDep, limit: Limit = 100) -> list[QuarantinePublic]:
    """Recently rejected messages: topic, reason, first bytes in hex, time."""
    check_limit(context, limit)
    return [QuarantinePublic.model_validate(row) for row in context.store.get().quarantine(limit)]
