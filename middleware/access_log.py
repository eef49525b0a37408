"""One access line per request: method, path, status, duration, principal, and for chat runs
the session, model, fallback, retries, tokens, cost and cache hit (`RunFacts`, filled in by the
chat runnable). The question itself only with `LOG_PROMPTS=true`."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from middleware.context import PRINCIPAL, RUN_FACTS, scope_state

logger = structlog.stdlib.get_logger("graphgate.access")


@dataclass
class RunFacts:
    """What one chat run did, for the access line."""

    session: str | None = None
    model: str | None = None
    fallback_used: bool | None = None
    retries: int | None = None
    tokens: int | None = None
    cost_usd: float | None = None
    cache_hit: bool | None = None
    prompt: str | None = None

    def note_reply(self, metadata: dict[str, Any]) -> None:
        """Take what graphgate put in a reply's `response_metadata`."""
        self.model = metadata.get("model")
        self.fallback_used = metadata.get("fallback_used")
        self.retries = metadata.get("retries")
        self.tokens = (metadata.get("usage") or {}).get("total_tokens")
        self.cost_usd = metadata.get("cost_usd")
        self.cache_hit = metadata.get("cache_hit")

    def fields(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        facts = RunFacts()
        scope_state(scope)[RUN_FACTS] = facts
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            logger.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
                principal=scope_state(scope).get(PRINCIPAL),
                **facts.fields(),
            )
