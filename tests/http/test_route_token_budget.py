"""A route's own `tokens_per_minute` counts the principal's tokens on that route only, as the
route's rate limit counts its requests; `TOKENS_PER_MINUTE` still counts every route."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.live_servers import Graphgate, StartGraphgate, route_file
from tests.upstream import Upstream

ROUTE_TOKENS = 400


@pytest.fixture
def routed(
    graphgate_factory: StartGraphgate, mode: str, tmp_path_factory: pytest.TempPathFactory
) -> Graphgate:
    routes = route_file(
        tmp_path_factory.mktemp("routes"),
        '[routes.capped]\npath = "/capped"\n'
        f"[routes.capped.limits]\ntokens_per_minute = {ROUTE_TOKENS}\n",
    )
    return graphgate_factory(mode, ROUTES_FILE=routes)


def away_from_the_minute_end() -> None:
    """Token windows are clock minutes: start where the whole test fits in one."""
    left = 60 - time.time() % 60
    if left < 15:
        time.sleep(left + 0.5)


def use_tokens_elsewhere(client: httpx.Client, api: str, question: str) -> int:
    """One turn on the built-in chat (through `api`); the tokens it used."""
    if api == "v1":
        body = {"model": "graphgate", "messages": [{"role": "user", "content": question}]}
        response = client.post("/v1/chat/completions", json=body)
        assert response.status_code == 200, response.text
        return int(response.json()["usage"]["total_tokens"])
    response = client.post("/chat/invoke", json={"input": {"question": question}})
    assert response.status_code == 200, response.text
    return int(response.json()["output"]["usage_metadata"]["total_tokens"])


def capped_turn(client: httpx.Client, question: str) -> httpx.Response:
    body = {"input": {"question": question}, "config": {"configurable": {"max_tokens": 100}}}
    return client.post("/capped/invoke", json=body)


@pytest.mark.parametrize("api", ["chat", "v1"])
def test_tokens_on_other_routes_do_not_count_against_a_routes_cap(
    routed: Graphgate, api: str, upstream: Upstream, user: str, marker: str
) -> None:
    upstream.behave(marker, tokens=60)
    away_from_the_minute_end()
    with httpx.Client(base_url=routed.url, headers={"X-User-Id": user}, timeout=30) as client:
        used = 0
        while used <= ROUTE_TOKENS:
            used += use_tokens_elsewhere(client, api, f"elsewhere {marker}")
        first = capped_turn(client, f"on the route {marker}")
        assert first.status_code == 200, first.text
        # The route's own tokens do count: its cap is reached within a few turns.
        statuses = [capped_turn(client, f"again {marker}").status_code for _ in range(6)]
    assert 429 in statuses
    assert statuses[: statuses.index(429)] == [200] * statuses.index(429)
