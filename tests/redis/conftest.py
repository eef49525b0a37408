"""The store tier's client: graphgate's own, on each Redis flavour."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from graphs.store.redis_client import RedisClient
from tests.conftest import REDIS_FLAVOURS
from tests.redis_servers import RedisFlavours


@pytest.fixture(params=REDIS_FLAVOURS)
async def redis(
    redis_flavours: RedisFlavours, request: pytest.FixtureRequest
) -> AsyncIterator[RedisClient]:
    """graphgate's own client of each Redis flavour: Stack, no modules, Cluster; a test that
    asks for it runs once on each."""
    client = redis_flavours.async_client(request.param)
    yield client
    await client.aclose()
