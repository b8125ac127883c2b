"""Models: metadata, and the TFLite and edge (LEM1) files.

Each device's readings train its own forecaster, so every endpoint takes an
optional ``device``; without it, the most recently trained model is meant.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response, status

from gateway.api.deps import ContextDep
from gateway.api.routes.devices import DEVICE_ID_SCHEMA, device_id_of
from gateway.api.schemas import ErrorDetail, ModelPublic

router = APIRouter(prefix="/api", tags=["model"])

NO_MODEL = "no model yet: the first training round has not finished"
EXTENSIONS = {"tflite": "tflite", "edge": "lem"}
Device = Annotated[str | None, Query(json_schema_extra=DEVICE_ID_SCHEMA,
                                     description="device id (default: newest)")]
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorDetail, "description": "the model registry cannot be read now"}}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorDetail, "description": NO_MODEL}, **UNAVAILABLE}


def _device(device: str | None) -> str | None:
    return None if device is None else device_id_of(device)


@router.get("/model", response_model=ModelPublic, responses=NOT_FOUND)
def get_model(context: ContextDep, device: Device = None) -> ModelPublic:
    """The latest model (of ``device`` if given): version, metrics, data range, downloads."""
    device = _device(device)
    current = context.models.current(device) if context.models else None
    if current is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            detail=NO_MODEL + (f" for device {device!r}" if device else ""))
    return ModelPublic.model_validate(current)


@router.get("/models", response_model=list[ModelPublic], responses=UNAVAILABLE)
def list_models(context: ContextDep) -> list[ModelPublic]:
    """The latest model of every device that has one, sorted by device."""
    if context.models is None:
        return []
    return [ModelPublic.model_validate(m) for m in context.models.latest_per_device()]


def _artifact(context: ContextDep, fmt: str, device: str | None) -> Response:
    device = _device(device)
    data = context.models.artifact(fmt, device) if context.models else None
    if data is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            detail=f"{NO_MODEL} (format {fmt!r}"
                            + (f", device {device!r})" if device else ")"))
    name = f"{device or context.config.gateway.id}-model.{EXTENSIONS[fmt]}"
    return Response(data, media_type="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/model.tflite", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}}}, **NOT_FOUND})
def get_model_tflite(context: ContextDep, device: Device = None) -> Response:
    """The model as a TFLite flatbuffer (runs in ai-edge-litert / TFLite Micro)."""
    return _artifact(context, "tflite", device)


@router.get("/model.lem", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}}}, **NOT_FOUND})
def get_model_edge(context: ContextDep, device: Device = None) -> Response:
    """The model in the boards' LEM1 format (docs/protocol.md), as pushed to devices."""
    return _artifact(context, "edge", device)
