"""Anchor: a bare Starlette endpoint, the floor of what serving a reply costs. `POST
/chat/invoke` answers a fixed 20-token reply as JSON; `POST /chat/stream` sends it token by token
as server-sent events."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from bench.anchors.model import REPLY_TOKENS

TOKENS = [f" word{i}" for i in range(REPLY_TOKENS)]


async def invoke(request: Request) -> Response:
    await request.body()
    return JSONResponse({"output": {"content": "".join(TOKENS)}})


async def stream(request: Request) -> Response:
    await request.body()

    async def events() -> AsyncIterator[bytes]:
        for token in TOKENS:
            yield f'event: data\ndata: {{"content": "{token}"}}\n\n'.encode()
        yield b"event: end\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[
        Route("/chat/invoke", invoke, methods=["POST"]),
        Route("/chat/stream", stream, methods=["POST"]),
        Route("/health", health),
    ]
)
