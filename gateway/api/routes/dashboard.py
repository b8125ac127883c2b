"""The dashboard at ``/`` and the offline API reference at ``/docs``.

Both are static files shipped in the package: no CDN, so they work on a Pi
with no Internet access. The page calls the JSON API and draws with SVG.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

router = APIRouter(include_in_schema=False)

STATIC = Path(__file__).resolve().parent.parent / "static"


@router.get("/")
def index() -> FileResponse:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/docs")
def api_docs() -> FileResponse:
    return FileResponse(STATIC / "apidocs.html", headers={"Cache-Control": "no-cache"})


@router.get("/favicon.ico")
def favicon() -> FileResponse:
    return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")
