"""Trace id: taken from `traceparent` or `X-Request-Id` when sent, else generated; returned in
`X-Trace-Id` (on every answer: this middleware is the outermost), kept in the request context
for error bodies and bound to every log line. When OpenTelemetry traces the request, its span's
trace id is the one (it continues an incoming `traceparent`, else starts a trace), so the logs
and the trace name the same id, and a caller's `X-Request-Id` is logged as `request_id`; the
span gets the request's principal (`user.id`). What the
request still holds when it ends (session locks no run claimed, admission's budget
reservations and unused rate units) is let go here."""

from __future__ import annotations

import re
import uuid

import structlog
from opentelemetry import trace
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graphs.telemetry.tracer import tracing
from middleware.request_context import open_request_context, serving

# W3C trace context: version-traceid-parentid-flags; the trace id is 32 hex digits, not all 0.
TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def incoming_trace_id(headers: Headers) -> str | None:
    match = TRACEPARENT.match(headers.get("traceparent", "").strip().lower())
    if match and match.group(1) != "0" * 32:
        return match.group(1)
    request_id = headers.get("x-request-id", "").strip()
    return request_id if REQUEST_ID.match(request_id) else None


def current_span() -> trace.Span | None:
    """The request's span, if OpenTelemetry traces it (a probe's is not traced)."""
    span = trace.get_current_span()
    return span if span.get_span_context().is_valid else None


class TraceIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        span = current_span() if tracing() else None
        logged: dict[str, str] = {}
        if span is not None:
            trace_id = format(span.get_span_context().trace_id, "032x")
            # The caller's own id, if it sent one: its log lines still carry it.
            request_id = headers.get("x-request-id", "").strip()
            if REQUEST_ID.match(request_id):
                logged["request_id"] = request_id
        else:
            trace_id = incoming_trace_id(headers) or uuid.uuid4().hex
        context = open_request_context(scope, trace_id)

        async def send_with_trace_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Trace-Id"] = trace_id
                # The span ends with the response's last byte, before this middleware's end.
                if span is not None and context.principal is not None:
                    span.set_attribute("user.id", context.principal.name)
            await send(message)

        # Every log line of this request, ours or a library's, carries the trace id.
        with structlog.contextvars.bound_contextvars(trace_id=trace_id, **logged), serving(context):
            try:
                await self.app(scope, receive, send_with_trace_id)
            finally:
                await context.end()
