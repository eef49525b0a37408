"""Every error a client sees is rendered here, and counted here, once: the JSON body
`{"error": {"code", "message", "trace_id"}}`, the same object as an SSE `error` event inside a
LangServe stream, OpenAI's `{"error": {"message", "type", "param", "code"}}` on `/v1`, and the
LangGraph server's `{"error": <type>, "message"}` for a run that failed once it started.
"""

from __future__ import annotations

import json
from typing import Any

from sse_starlette.sse import ServerSentEvent
from starlette.responses import JSONResponse
from starlette.types import Message, Receive, Scope, Send

from graphs.errors import GraphgateError, InternalError
from graphs.metrics import REFUSALS
from middleware.request_context import request_context

OPENAI_PREFIX = "/v1/"
OPENAI_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def error_body(error: GraphgateError, trace_id: str) -> dict[str, Any]:
    return {"error": {"code": error.code, "message": error.message, "trace_id": trace_id}}


def error_response(scope: Scope, error: GraphgateError) -> JSONResponse:
    """The error response for this request's API (OpenAI's shape under `/v1`), with the
    failure's own headers (Retry-After, WWW-Authenticate)."""
    trace_id = request_context(scope).trace_id
    if scope["path"].startswith(OPENAI_PREFIX):
        body = openai_error_object(error, trace_id)
    else:
        REFUSALS.labels(error.code).inc()
        body = error_body(error, trace_id)
    return JSONResponse(body, error.status, headers=error.headers())


async def send_error(scope: Scope, receive: Receive, send: Send, error: GraphgateError) -> None:
    """For pure ASGI middleware: answer the request with `error`."""
    await error_response(scope, error)(scope, receive, send)


class WatchedSend:
    """`send` that remembers whether the response has started: until then a middleware that
    catches a failure may still answer with an error status; after, it can only end the body."""

    def __init__(self, send: Send) -> None:
        self.started = False
        self._send = send

    async def __call__(self, message: Message) -> None:
        self.started = self.started or message["type"] == "http.response.start"
        await self._send(message)


def sse_error_event(error: GraphgateError | None, trace_id: str) -> bytes:
    """LangServe's SSE `error` event, keeping the two keys its clients read (`status_code`,
    `message`) and adding the error object; None is an unexpected failure."""
    error = error or InternalError("Internal Server Error")
    REFUSALS.labels(error.code).inc()
    body = error_body(error, trace_id)
    data = {"status_code": error.status, "message": error.message, **body}
    return ServerSentEvent(data=json.dumps(data), event="error").encode()


def langgraph_run_error(error: GraphgateError | None, trace_id: str) -> dict[str, Any]:
    """A LangGraph API run's failure, as its `error` event's data and `runs/wait`'s
    `__error__`: the LangGraph server's keys (`error`, the failure's type; `message`), and
    graphgate's code and trace id; None is an unexpected failure, whose detail stays in the
    log."""
    error = error or InternalError("An internal error occurred.")
    REFUSALS.labels(error.code).inc()
    return {
        "error": type(error).__name__,
        "message": error.message,
        "code": error.code,
        "trace_id": trace_id,
    }


def openai_error_object(error: GraphgateError, trace_id: str) -> dict[str, Any]:
    REFUSALS.labels(error.code).inc()
    kind = "server_error" if error.status >= 500 else "api_error"
    return {
        "error": {
            "message": f"{error.message} (trace id {trace_id})",
            "type": OPENAI_ERROR_TYPES.get(error.status, kind),
            "param": getattr(error, "param", None),
            "code": error.code,
        }
    }


def openai_stream_error(error: GraphgateError, trace_id: str) -> bytes:
    """A failure after an OpenAI stream began: an `error` payload, as OpenAI sends it."""
    return f"data: {json.dumps(openai_error_object(error, trace_id))}\n\n".encode()
