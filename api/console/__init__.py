"""`/console`: the operator console, three static files served as they are (no front-end
server, no build step, no third-party script). The page holds no data: it signs in with a
key (or, behind a gateway or on `make run`'s loopback, with none), calls `/admin/` and draws
what it reads, charts included (SVG, in `console.js`). Its policy lets it load and call only
this origin.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse

from graphs.errors import NotFound

HERE = Path(__file__).parent
FILES = {"console.js": "text/javascript", "console.css": "text/css"}
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {"Content-Security-Policy": POLICY, "Cache-Control": "no-cache"}

router = APIRouter(include_in_schema=False)


@router.get("/console")
async def console_root() -> RedirectResponse:
    return RedirectResponse("console/", status_code=308)


@router.get("/console/")
async def console_page() -> FileResponse:
    return FileResponse(HERE / "index.html", media_type="text/html", headers=HEADERS)


@router.get("/console/{name}")
async def console_file(name: str) -> FileResponse:
    if name not in FILES:
        raise NotFound(f"No console file {name!r}.")
    return FileResponse(HERE / name, media_type=FILES[name], headers=HEADERS)
