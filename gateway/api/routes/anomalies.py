"""A device's anomaly events: what the gateway's detector alarmed about, once per incident."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, Field

from gateway.api.deps import ContextDep
from gateway.api.routes.devices import DeviceId, Limit, check_limit, device_id_of

router = APIRouter(prefix="/api", tags=["devices"])


class AnomalyEventPublic(BaseModel):
    id: int
    device: str
    start: float = Field(description="time of the first flagged reading (unix seconds)")
    end: float = Field(description="time of the last flagged reading so far")
    peak: float = Field(description="highest score, in residual scales")
    channels: list[str] = Field(description="channels above the threshold")
    flags: int = Field(description="flagged readings in the event")
    kind: str = Field(description="anomaly, or level_shift once the run became a new level")
    open: bool = Field(description="true while more flags may still join the event")
    model_version: int | None = None


@router.get("/devices/{device_id}/anomalies", response_model=list[AnomalyEventPublic],
            responses={404: {"description": "unknown device"}})
def list_anomalies(context: ContextDep, device_id: DeviceId, limit: Limit = 100,
                   since: Annotated[float | None, Query(
                       description="only events ending at or after this unix time")] = None,
                   ) -> list[AnomalyEventPublic]:
    """The device's anomaly events, newest first (consecutive flags merged into one)."""
    from gateway.store.anomaly_events import AnomalyEventLog

    device = device_id_of(device_id)
    check_limit(context, limit)
    if context.store.get().device(device) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no device {device!r}")
    with AnomalyEventLog.open(context.config.db_path, readonly=True) as events:
        rows = events.events(device, limit=limit, since=since)
    return [AnomalyEventPublic.model_validate(r) for r in rows]
