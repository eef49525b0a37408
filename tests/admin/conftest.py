"""The admin tier: `/admin/` and the console's access rules on the app in this process, over
real Redis (each flavour where the layout matters) or embedded, with keys put in Redis by the
key store the CLI uses."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest

from auth.api_keys import KeyRecord, key_hash, new_key
from auth.redis_key_store import RedisKeyStore
from graphs.identity import Quota
from graphs.settings import Settings
from server import create_app
from tests.redis_servers import RedisFlavours

AdminApp = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]
IssueKey = Callable[..., Awaitable[str]]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def admin_app(redis_flavours: RedisFlavours) -> AdminApp:
    """`async with admin_app(flavour, **settings) as client`: the app on that Redis flavour
    (`embedded`: none), the instant demo model, a loopback client unless `client` says."""

    @asynccontextmanager
    async def open_app(
        flavour: str = "redis", client: tuple[str, int] = ("127.0.0.1", 50000), **values: Any
    ) -> AsyncIterator[httpx.AsyncClient]:
        redis = redis_flavours.settings(flavour) if flavour != "embedded" else {}
        defaults: dict[str, Any] = {
            "app_env": "test",
            "openai_base_url": None,
            "openai_api_key": None,
            "anthropic_api_key": None,
            "llm_fallback_model": None,
            "demo_tokens_per_second": 0,
            "redis_url": redis.get("REDIS_URL"),
            "redis_host": None,
            "redis_cluster": "REDIS_CLUSTER" in redis,
        }
        settings = Settings(**{**defaults, **values})
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, client=client)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://localhost:8000"
            ) as http:
                yield http

    return open_app


@pytest.fixture
async def issue_key(redis_flavours: RedisFlavours) -> AsyncIterator[IssueKey]:
    """`await issue_key(principal, admin=False, flavour="redis", prefix=..., **quota)`: a key
    in that Redis's key store, as `python -m auth create` makes one."""
    clients = {}

    async def issue(
        principal: str,
        *,
        admin: bool = False,
        flavour: str = "redis",
        prefix: str = "graphgate:",
        **quota: Any,
    ) -> str:
        if flavour not in clients:
            clients[flavour] = redis_flavours.async_client(flavour)
        key = new_key()
        record = KeyRecord(principal, key_hash(key), Quota(**quota), time.time(), admin=admin)
        await RedisKeyStore(clients[flavour], prefix).add(record)
        return key

    yield issue
    for client in clients.values():
        await client.aclose()


@pytest.fixture
def principal() -> str:
    return f"p-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def prefix() -> str:
    """A Redis prefix of the test's own: usage across principals is the whole prefix's."""
    return f"admin-{uuid.uuid4().hex[:8]}:"
