"""Model versions of one device, promoted and rejected, with the guard's figures and reason.

``GET /api/models`` lists every device's current model (and the versions rejected since);
this route is the full history of one device, for seeing why a new version was not
deployed.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, status

from gateway.api.deps import ContextDep
from gateway.api.routes.devices import DeviceId, device_id_of
from gateway.api.schemas import ErrorDetail, ModelPublic

router = APIRouter(prefix="/api", tags=["model"])


@router.get("/models/{device_id}/versions", response_model=list[ModelPublic],
            responses={404: {"model": ErrorDetail,
                             "description": "no model version for this device"}})
def list_versions(context: ContextDep, device_id: DeviceId) -> list[ModelPublic]:
    """All versions of the device, oldest first: ``status`` promoted or rejected, ``reason``."""
    device = device_id_of(device_id)
    source: Any = context.models
    rows = source.versions(device) if source is not None and hasattr(source, "versions") else []
    if not rows:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            detail=f"no model version for device {device!r}")
    return [ModelPublic.model_validate(r) for r in rows]
