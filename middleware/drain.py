"""Graceful drain: once the process is told to stop, new requests get 503 `shutting_down` (and
readiness 503, so the load balancer stops sending), while requests and streams already in
flight run to their end. `serving/gunicorn_worker.py` starts the drain on SIGTERM and stops the
server when nothing is in flight (or at the graceful timeout)."""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send

from graphs.errors import RETRY_BUSY_SECONDS, ShuttingDown
from middleware.error_responses import send_error

# Probes and scrapes keep answering while draining: liveness stays 200, readiness says 503.
ALWAYS_SERVED = ("/health/", "/metrics")


class DrainState:
    """The process's drain flag and the number of requests it still has to finish."""

    def __init__(self) -> None:
        self.draining = False
        self.in_flight = 0
        self._idle: asyncio.Event | None = None

    def start(self) -> None:
        self.draining = True

    def enter(self) -> None:
        self.in_flight += 1

    def leave(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0 and self._idle is not None:
            self._idle.set()

    async def wait_idle(self) -> None:
        self._idle = asyncio.Event()
        if self.in_flight:
            await self._idle.wait()


DRAIN = DrainState()


class DrainMiddleware:
    def __init__(self, app: ASGIApp, *, state: DrainState = DRAIN) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ALWAYS_SERVED):
            await self.app(scope, receive, send)
            return
        if self.state.draining:
            refusal = ShuttingDown(
                "This instance is shutting down; retry on another.",
                retry_after=RETRY_BUSY_SECONDS,
                headers={"Connection": "close"},
            )
            await send_error(scope, receive, send, refusal)
            return
        self.state.enter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.state.leave()
