"""``POST /api/devices/{id}/ota`` (token) and ``GET /api/devices/{id}/ota``.

The POST starts a push of the installed firmware (``board`` in the body picks the
compiler architecture); the GET answers where the device's last push stands. The
pushes themselves are ``gateway.ota.jobs.OtaJobs``, one per app.
"""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.context import ServiceContext
from gateway.api.deps import ContextDep, TokenDep
from gateway.api.routes.devices import DeviceId, device_id_of
from gateway.api.schemas import ErrorDetail
from gateway.errors import BundleError, OtaBusy
from gateway.ota.jobs import OtaJobs

router = APIRouter(prefix="/api", tags=["ota"])
_MAKE = threading.Lock()  # one OtaJobs per app


def _jobs(request: Request, context: ServiceContext) -> OtaJobs:
    state = request.app.state
    with _MAKE:
        if getattr(state, "ota_jobs", None) is None:
            state.ota_jobs = OtaJobs(context.config, context.registry)
    return state.ota_jobs  # type: ignore[no-any-return]


class OtaRequest(BaseModel):
    """What to build: the board file whose compiler architecture the bundle uses."""

    model_config = ConfigDict(extra="forbid")
    board: str | None = Field(default=None, description="a file name of hardware/boards/")


class OtaStarted(BaseModel):
    device: str
    version: str
    bytes: int
    files: int


def _body_error(message: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                         detail=[{"loc": ["body", "board"], "msg": message,
                                  "type": "value_error"}])


@router.post(
    "/devices/{device_id}/ota",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=OtaStarted,
    responses={404: {"model": ErrorDetail, "description": "the device has no OTA key"},
               409: {"model": ErrorDetail, "description": "a push to this device is running"}},
)
def post_ota(context: ContextDep, _: TokenDep, request: Request, device_id: DeviceId,
             body: Annotated[OtaRequest | None, Body()] = None) -> OtaStarted:
    """Start updating one board over MQTT; poll ``GET`` for the outcome."""
    device = device_id_of(device_id)
    try:
        bundle = _jobs(request, context).start(device, body.board if body is not None else None)
    except KeyError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc.args[0])) from exc
    except OtaBusy as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from exc
    except BundleError as exc:
        raise _body_error(str(exc)) from exc
    return OtaStarted(device=device, version=bundle.version, bytes=bundle.firmware_bytes,
                      files=len(bundle.files))


@router.get("/devices/{device_id}/ota",
            responses={404: {"model": ErrorDetail, "description": "no push to it yet"}})
def get_ota(context: ContextDep, request: Request, device_id: DeviceId) -> dict[str, Any]:
    """Where the device's last push stands."""
    device = device_id_of(device_id)
    found = _jobs(request, context).outcome(device)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no OTA push to {device!r} yet")
    return found
