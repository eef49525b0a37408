"""The SSE error event carries graphgate's status, code and trace id.

LangServe 0.3.3 answers any exception raised while streaming with the event
`error` / `{"status_code": 500, "message": "Internal Server Error"}` and then re-raises, so a
deadline or an upstream failure mid-stream would reach the client as a generic 500. The chat
runnable records the `GraphgateError` it raised in the request context; this middleware
rewrites LangServe's error event from it (`middleware/error_responses.py` renders it). Once an
error event is out, the exception LangServe re-raises has been reported: the body is ended
cleanly instead of the connection being dropped. A response that writes its own error events
in another API's shape (the LangGraph API's runs) says so in the request context.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from middleware.error_responses import sse_error_event
from middleware.request_context import request_context

ERROR_EVENT = b"event: error"

logger = logging.getLogger(__name__)


class SSEErrorMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        error_sent = False
        context = request_context(scope)

        async def rewriting_send(message: Message) -> None:
            nonlocal error_sent
            if (
                message["type"] == "http.response.body"
                and not context.writes_own_errors
                and message.get("body", b"").startswith(ERROR_EVENT)
            ):
                event = sse_error_event(context.stream_failure, context.trace_id)
                message = {**message, "body": event}
                error_sent = True
            await send(message)

        try:
            await self.app(scope, receive, rewriting_send)
        except Exception as exc:
            if not error_sent:
                raise
            logger.warning("stream ended by %s", type(exc).__name__)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
