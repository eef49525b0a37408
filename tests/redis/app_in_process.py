"""graphgate in this process over a Redis flavour, for a store test that looks at what a whole
turn does to Redis: `create_app` behind httpx's ASGI transport, the instant demo model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from graphs.settings import Settings
from server import create_app


@asynccontextmanager
async def app_over(
    redis_settings: dict[str, str], **values: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app on the Redis of `redis_settings` (`RedisFlavours.settings`), with
    `values` as settings."""
    settings = Settings(
        app_env="test",
        openai_base_url=None,
        openai_api_key=None,
        llm_fallback_model=None,
        demo_tokens_per_second=0,
        redis_url=redis_settings["REDIS_URL"],
        redis_cluster="REDIS_CLUSTER" in redis_settings,
        **values,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gg.test") as client:
            yield client
