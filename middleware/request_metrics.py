"""Request metrics: count and latency by route template and status, requests in flight and
open streams. The route is FastAPI's template (`/chat/sessions/{session_id}`), never the raw
path, so ids cannot blow up the label space."""

from __future__ import annotations

import time

from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graphs.metrics import HTTP_LATENCY, HTTP_REQUESTS, IN_FLIGHT, OPEN_STREAMS

UNMATCHED = "unmatched"


def route_of(scope: Scope) -> str:
    route = scope.get("route")
    return route.path if isinstance(route, Route) else UNMATCHED


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        streaming = False

        async def observing_send(message: Message) -> None:
            nonlocal status, streaming
            if message["type"] == "http.response.start":
                status = message["status"]
                content_type = dict(message.get("headers", [])).get(b"content-type", b"")
                streaming = content_type.startswith(b"text/event-stream")
                if streaming:
                    OPEN_STREAMS.inc()
            await send(message)

        IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, observing_send)
        finally:
            IN_FLIGHT.dec()
            if streaming:
                OPEN_STREAMS.dec()
            route = route_of(scope)
            HTTP_REQUESTS.labels(route, scope["method"], str(status)).inc()
            HTTP_LATENCY.labels(route).observe(time.perf_counter() - started)
