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

from gateway.api.deps import ContextDep, TokenDep
from shared.errors import ProtocolError
from shared.topics import check_device_id

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


def _device(device_id: str) -> str:
    try:
        return check_device_id(device_id)
    except ProtocolError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from exc


@router.post(
    "/devices/{device_id}/ota",
    status_code=status.HTTP_202_ACCEPTED,
    responses={401: {"description": "no bearer token"}, 403: {"description": "wrong token"},
               404: {"description": "the device has no OTA key"},
               409: {"description": "a push to this device is running"},
               422: {"description": "bad device id or board"}},
)
def post_ota(context: ContextDep, _: TokenDep, request: Request, device_id: str,
             body: Annotated[dict[str, Any] | None, Body()] = None) -> dict[str, Any]:
    """Start updating one board over MQTT; poll ``GET`` for the outcome."""
    from gateway.commands.ota import keys_dir
    from gateway.ota import BundleError, KeyStore, OtaPush, build_bundle

    device = _device(device_id)
    jobs = _jobs(request, context.registry)
    board = (body or {}).get("board")
    if board is not None and not isinstance(board, str):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            detail=f"board must be a board file name, got {board!r}")
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
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from exc
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
    return {"device": device, "version": bundle.version, "bytes": bundle.firmware_bytes,
            "files": len(bundle.files)}


@router.get("/devices/{device_id}/ota", responses={404: {"description": "no push yet"}})
def get_ota(context: ContextDep, request: Request, device_id: str) -> dict[str, Any]:
    """Where the device's last push stands."""
    device = _device(device_id)
    o = _jobs(request, context.registry).outcomes.get(device)
    if o is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no OTA push to {device!r} yet")
    return o if isinstance(o, dict) else o.as_dict()  # type: ignore[no-any-return]
