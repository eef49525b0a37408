"""The app in this process: `create_app(settings)` behind httpx's ASGI transport, embedded mode
and the instant demo model, on a clock the test sets. No server process, no Redis, no upstream:
this tier runs in seconds (`make test-fast`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest

from graphs.settings import Settings
from server import create_app
from tests.clock import SetClock

AppClient = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def clock() -> SetClock:
    return SetClock()


@pytest.fixture
def app_client(clock: SetClock) -> AppClient:
    """`async with app_client(**settings) as client`: the app, its lifespan run, for a client."""

    @asynccontextmanager
    async def open_client(**values: Any) -> AsyncIterator[httpx.AsyncClient]:
        defaults: dict[str, Any] = {
            "app_env": "test",
            "openai_base_url": None,
            "openai_api_key": None,
            "anthropic_api_key": None,
            "redis_url": None,
            "redis_host": None,
            "llm_model": "gpt-4o-mini",
            "llm_fallback_model": None,
            "demo_tokens_per_second": 0,
        }
        settings = Settings(**{**defaults, **values})
        app = create_app(settings, clock=clock)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://graphgate.test", timeout=10
            ) as client:
                yield client

    return open_client
