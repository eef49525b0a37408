"""One access line per request: method, path, status, duration, principal (and the id of the
API key it used, never the key), and for chat runs
the session, the end user (`/v1`'s `user`), model, fallback, retries, tokens, cost and cache hit
(the request context's `RunRecord`, filled in by the chat runnable). The question itself only
with `LOG_PROMPTS=true`. Lines are JSON, so a client's text (an end user with a newline or an
escape sequence) stays one escaped value on one line."""

from __future__ import annotations

import time

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from middleware.request_context import request_context

logger = structlog.stdlib.get_logger("graphgate.access")


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            context = request_context(scope)
            logger.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
                **context.caller_fields(),
                **context.run.fields(),
            )
