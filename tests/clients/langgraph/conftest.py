"""The LangGraph clients' suites share one server: graphgate in Redis mode with API keys,
serving the example app's routes (its agents), and a key and a client of it per module."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from tests.conftest import ApiKey, create_key
from tests.example_agent import EXAMPLE_ROUTES
from tests.live_servers import Graphgate, StartGraphgate


@pytest.fixture(scope="module")
def server(graphgate_factory: StartGraphgate) -> Graphgate:
    return graphgate_factory("redis", AUTH_MODE="api_key", ROUTES_FILE=EXAMPLE_ROUTES)


@pytest.fixture(scope="module")
def key(redis_url: str) -> ApiKey:
    return create_key(f"lg-{uuid.uuid4().hex[:10]}", redis_url=redis_url)


@pytest.fixture
async def client(server: Graphgate, key: ApiKey) -> AsyncIterator[LangGraphClient]:
    async with get_client(url=server.url, api_key=key.key) as opened:
        yield opened
