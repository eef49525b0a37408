"""The SSE error event carries graphgate's status, code and trace id.

LangServe 0.3.3 answers any exception raised while streaming with the event
`error` / `{"status_code": 500, "message": "Internal Server Error"}` and then re-raises, so a
deadline or an upstream failure mid-stream would reach the client as a generic 500. The chat
runnable records the `GraphgateError` it raised in a `StreamFailure` kept in the request state;
this middleware rewrites LangServe's error event from it, keeping the two keys LangServe's
clients read (`status_code`, `message`) and adding design.md's `error` object. Once an error
event is out, the exception LangServe re-raises has been reported: the body is ended cleanly
instead of the connection being dropped.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from sse_starlette.sse import ServerSentEvent
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graphs.errors import GraphgateError
from middleware.context import STREAM_FAILURE, scope_state, trace_id_of
from middleware.errors import error_body

ERROR_EVENT = b"event: error"

logger = logging.getLogger(__name__)


@dataclass
class StreamFailure:
    """Where the streaming runnable leaves the error that ended a stream."""

    error: GraphgateError | None = None


def error_event(error: GraphgateError | None, trace_id: str) -> bytes:
    if error is None:
        status, body = 500, error_body("internal_error", "Internal Server Error", trace_id)
    else:
        status, body = error.status, error_body(error.code, error.message, trace_id)
    data = {"status_code": status, "message": body["error"]["message"], **body}
    return ServerSentEvent(data=json.dumps(data), event="error").encode()


class SSEErrorMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        error_sent = False

        async def rewriting_send(message: Message) -> None:
            nonlocal error_sent
            if message["type"] == "http.response.body" and message.get("body", b"").startswith(
                ERROR_EVENT
            ):
                failure = scope_state(scope).get(STREAM_FAILURE)
                error = failure.error if isinstance(failure, StreamFailure) else None
                message = {**message, "body": error_event(error, trace_id_of(scope))}
                error_sent = True
            await send(message)

        try:
            await self.app(scope, receive, rewriting_send)
        except Exception as exc:
            if not error_sent:
                raise
            logger.warning("stream ended by %s (trace %s)", type(exc).__name__, trace_id_of(scope))
            await send({"type": "http.response.body", "body": b"", "more_body": False})
