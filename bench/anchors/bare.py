"""Anchor: a bare Starlette endpoint, the floor of what serving a reply costs. `POST
/chat/invoke` answers a fixed reply of `REPLY_TOKENS` tokens (20 unless `BENCH_REPLY_TOKENS`
says otherwise) as JSON; `POST /chat/stream` sends it token by token as server-sent events,
sleeping 1 / `BENCH_TOKENS_PER_SECOND` s before each token when that is set, as the paced demo
model does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from bench.anchors.model import REPLY_TOKENS, TOKENS_PER_SECOND

TOKENS = [f" word{i}" for i in range(REPLY_TOKENS)]


async def invoke(request: Request) -> Response:
    await request.body()
    return JSONResponse({"output": {"content": "".join(TOKENS)}})


async def stream(request: Request) -> Response:
    await request.body()

    async def events() -> AsyncIterator[bytes]:
        for token in TOKENS:
            if TOKENS_PER_SECOND:
                await asyncio.sleep(1 / TOKENS_PER_SECOND)
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
