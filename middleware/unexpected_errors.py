"""The last line: an exception nobody handled becomes 500 `internal_error` with the error body,
and is logged exactly once, with its trace id and traceback.

Starlette's own handler for `Exception` runs outside every middleware (no `X-Trace-Id` on the
answer, no trace id on its log line) and re-raises, so uvicorn logs the traceback a second
time; this middleware sits inside the trace id and answers without re-raising.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Receive, Scope, Send

from graphs.errors import InternalError
from middleware.error_responses import WatchedSend, send_error

logger = logging.getLogger("graphgate.errors")


class UnexpectedErrorMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        watched = WatchedSend(send)
        try:
            await self.app(scope, receive, watched)
        except Exception:
            logger.exception("unhandled error in %s %s", scope["method"], scope["path"])
            if (
                watched.started
            ):  # too late for a status: end the body so the client is not left hanging
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await send_error(scope, receive, send, InternalError("Internal server error."))
