"""``POST /api/devices/{id}/ota`` (token) and ``GET /api/devices/{id}/ota``.

The POST builds the bundle of the installed firmware (``board`` in the body
picks the compiler architecture) and starts a push in a thread of its own
(gateway/ota/push.py); the GET answers where the device's last push stands,
as the push sees it: ``state`` requested, receiving, switching, then updated,
refused (with the board's reason), rolled_back or timeout. ``/metrics``
carries ``learnae_ota_pushes_total{outcome}`` and
``learnae_ota_bytes_acked{device}``.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.deps import ContextDep, TokenDep
from gateway.api.routes.devices import DeviceId, _device_id
from gateway.api.schemas import ErrorDetail

router = APIRouter(prefix="/api", tags=["ota"])
_MAKE = threading.Lock()  # one OtaJobs per app


class OtaJobs:
    """The app's pushes (one per device at a time) and their metrics."""

    def __init__(self, registry: Any) -> None:
        from prometheus_client import Counter, Gauge

        kw = {"registry": registry} if registry is not None else {}
        self.pushes = Counter("learnae_ota_pushes", "OTA pushes by outcome", ["outcome"], **kw)
        self.acked = Gauge("learnae_ota_bytes_acked",
                           "bytes of the running OTA stream the board has acknowledged",
                           ["device"], **kw)
        self.lock = threading.Lock()
        self.outcomes: dict[str, Any] = {}
        self.threads: dict[str, threading.Thread] = {}

    def busy(self, device: str) -> bool:
        t = self.threads.get(device)
        return t is not None and t.is_alive()


def _jobs(request: Request, registry: Any) -> OtaJobs:
    state = request.app.state
    with _MAKE:
        if getattr(state, "ota_jobs", None) is None:
            state.ota_jobs = OtaJobs(registry)
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
    from gateway.commands.ota import keys_dir
    from gateway.ota import BundleError, KeyStore, OtaPush, build_bundle

    device = _device_id(device_id)
    jobs = _jobs(request, context.registry)
    board = body.board if body is not None else None
    try:
        key = KeyStore(keys_dir(context.config)).get(device)
    except KeyError as exc:
        jobs.pushes.labels("no_key").inc()
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc.args[0])) from exc
    with jobs.lock:
        if jobs.busy(device):
            jobs.pushes.labels("busy").inc()
            raise HTTPException(status.HTTP_409_CONFLICT,
                                detail=f"a push to {device!r} is still running")
        try:
            bundle = build_bundle(Path(tempfile.mkdtemp(prefix="learnae-ota-")), board=board)
        except BundleError as exc:
            raise _body_error(str(exc)) from exc
        gw, c = context.config, context.config.ota

        def progress(o: Any) -> None:
            jobs.outcomes[device] = o
            jobs.acked.labels(device).set(o.next)

        push = OtaPush(host=gw.mqtt.host, port=gw.mqtt.port, prefix=gw.mqtt.topic_prefix,
                       username=gw.mqtt.username, password=gw.mqtt.password, chunk=c.chunk,
                       window=c.window, ack_timeout=c.ack_timeout_s, confirm_s=c.confirm_s,
                       on_progress=progress)

        def work() -> None:
            try:
                out = push.push({device: (bundle, key)}, timeout=c.timeout_s)[device]
                jobs.outcomes[device] = out
                jobs.pushes.labels(out.state).inc()
            except OSError as exc:
                jobs.outcomes[device] = {"device": device, "state": "failed",
                                         "reason": f"broker: {exc}"}
                jobs.pushes.labels("failed").inc()

        jobs.outcomes[device] = {"device": device, "state": "requested",
                                 "version": bundle.version}
        thread = threading.Thread(target=work, name=f"ota-{device}", daemon=True)
        jobs.threads[device] = thread
        thread.start()
    return OtaStarted(device=device, version=bundle.version, bytes=bundle.firmware_bytes,
                      files=len(bundle.files))


@router.get("/devices/{device_id}/ota",
            responses={404: {"model": ErrorDetail, "description": "no push to it yet"}})
def get_ota(context: ContextDep, request: Request, device_id: DeviceId) -> dict[str, Any]:
    """Where the device's last push stands."""
    device = _device_id(device_id)
    o = _jobs(request, context.registry).outcomes.get(device)
    if o is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no OTA push to {device!r} yet")
    return o if isinstance(o, dict) else o.as_dict()  # type: ignore[no-any-return]
