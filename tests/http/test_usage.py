"""Usage as the provider reports it, priced from the table, summed per principal per day, and
the budgets that cap it."""

from __future__ import annotations

from dataclasses import asdict
from decimal import Decimal
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessageChunk
from langserve import RemoteRunnable

from graphs.limits.usage import RedisUsageLedger, Spending
from graphs.limits.usage_counters import LedgerEntry
from tests.clock import SetClock
from tests.conftest import ALL_MODES, PRIMARY_MODEL, REDIS_FLAVOURS, mode_fixture
from tests.live_servers import Graphgate, StartGraphgate
from tests.redis_servers import RedisFlavours
from tests.upstream import Upstream

INPUT_PRICE, OUTPUT_PRICE = Decimal("1.5"), Decimal("6")  # USD per million tokens


@pytest.fixture(scope="session")
def pricing_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("pricing") / "prices.toml"
    path.write_text(
        f'[models."{PRIMARY_MODEL}"]\ninput = {INPUT_PRICE}\noutput = {OUTPUT_PRICE}\n'
        '[models."gpt-budget"]\ninput = 0\noutput = 100\n'
    )
    return str(path)


mode = mode_fixture(ALL_MODES)


@pytest.fixture
def priced_server(graphgate_factory: StartGraphgate, mode: str, pricing_file: str) -> Graphgate:
    return graphgate_factory(mode, PRICING_FILE=pricing_file)


def chat(server: Graphgate, user: str) -> RemoteRunnable[Any, Any]:
    return RemoteRunnable(server.chat_url, headers={"X-User-Id": user}, timeout=30)


def expected_cost(usage: dict[str, int]) -> float:
    total = usage["prompt_tokens"] * INPUT_PRICE + usage["completion_tokens"] * OUTPUT_PRICE
    return float(total / 1_000_000)


def assert_usage_matches(metadata: dict[str, Any], upstream_usage: dict[str, int]) -> None:
    assert metadata["usage"] == {
        "input_tokens": upstream_usage["prompt_tokens"],
        "output_tokens": upstream_usage["completion_tokens"],
        "total_tokens": upstream_usage["total_tokens"],
    }
    assert metadata["cost_usd"] == pytest.approx(expected_cost(upstream_usage), rel=1e-12)


def test_invoke_reports_the_upstream_usage_and_its_cost(
    priced_server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    upstream.behave(marker, tokens=7)
    reply = chat(priced_server, user).invoke({"question": f"count these words {marker}"})
    (upstream_usage,) = upstream.stats(marker)["usage"]
    assert_usage_matches(reply.response_metadata, upstream_usage)
    assert reply.usage_metadata["total_tokens"] == upstream_usage["total_tokens"]


def test_stream_reports_the_upstream_usage_and_its_cost(
    priced_server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    upstream.behave(marker, tokens=12)
    chunks = list(chat(priced_server, user).stream({"question": f"stream {marker}"}))
    reply = chunks[0]
    for chunk in chunks[1:]:
        reply += chunk
    assert isinstance(reply, AIMessageChunk)
    (upstream_usage,) = upstream.stats(marker)["usage"]
    assert_usage_matches(reply.response_metadata, upstream_usage)


def test_usage_endpoint_sums_the_callers_calls_by_day_and_model(
    priced_server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    client = chat(priced_server, user)
    for turn in range(3):
        client.invoke({"question": f"turn {turn} {marker}"})
    chat(priced_server, f"{user}-other").invoke({"question": f"someone else {marker}"})
    mine = upstream.stats(marker)["usage"][:3]
    response = httpx.get(f"{priced_server.url}/usage", headers={"X-User-Id": user})
    assert response.status_code == 200
    (today,) = response.json()["days"]
    model = today["models"][f"openai:{PRIMARY_MODEL}"]
    assert today["total"] == model
    assert model["requests"] == 3
    assert model["input_tokens"] == sum(u["prompt_tokens"] for u in mine)
    assert model["output_tokens"] == sum(u["completion_tokens"] for u in mine)
    assert model["total_tokens"] == sum(u["total_tokens"] for u in mine)
    assert model["cost_usd"] == pytest.approx(sum(expected_cost(u) for u in mine), rel=1e-9)


@pytest.mark.parametrize("mode", REDIS_FLAVOURS)
def test_the_request_after_the_daily_budget_is_spent_gets_429_budget_exceeded(
    graphgate_factory: StartGraphgate,
    mode: str,
    pricing_file: str,
    upstream: Upstream,
    user: str,
    marker: str,
) -> None:
    # Each call: 10 output tokens at 100 USD per million = 0.001 USD, its worst case too
    # (max_tokens 10): the third turn's reservation does not fit in what two left of 0.0025.
    server = graphgate_factory(
        mode,
        PRICING_FILE=pricing_file,
        LLM_MODEL="gpt-budget",
        LLM_FALLBACK_MODEL="",
        DAILY_BUDGET_USD="0.0025",
    )
    upstream.behave(marker, tokens=10)
    statuses = []
    for turn in range(3):
        response = httpx.post(
            f"{server.url}/chat/invoke",
            json={
                "input": {"question": f"t{turn} {marker}"},
                "config": {"configurable": {"max_tokens": 10}},
            },
            headers={"X-User-Id": user},
        )
        statuses.append(response.status_code)
    assert statuses == [200, 200, 429]
    assert response.json()["error"]["code"] == "budget_exceeded"
    assert 0 < int(response.headers["Retry-After"]) <= 86_400


@pytest.mark.parametrize("flavour", REDIS_FLAVOURS)
async def test_the_redis_ledger_counts_a_minutes_tokens_and_the_days_spend(
    redis_flavours: RedisFlavours, flavour: str, user: str
) -> None:
    """The server-level refusal is in the contract tier, on a clock it sets; here the Redis
    ledger's minute counter, on the same kind of clock."""
    clock = SetClock(1_764_115_259.0)  # 2025-11-26T00:00:59Z
    redis = redis_flavours.async_client(flavour)
    ledger = RedisUsageLedger(redis, "graphgate:", retention_days=1, clock=clock)
    await ledger.record(user, "m", LedgerEntry(total_tokens=30, cost_usd=0.25), route="chat")
    await ledger.record(
        user, "m", LedgerEntry(total_tokens=12, cost_usd=0.5, cache_hits=1), route="chat"
    )
    assert await ledger.spending(user) == Spending(tokens_this_minute=42, cost_today_usd=0.75)
    clock.now += 1
    assert await ledger.spending(user) == Spending(tokens_this_minute=0, cost_today_usd=0.75)
    day = (await ledger.days(user, [clock.today()]))[clock.today().isoformat()]
    # Zero increments are not written; the ledger still reads every counter, as 0.
    assert day["m"] == {
        **asdict(LedgerEntry(total_tokens=42, cost_usd=0.75)),
        "requests": 2,
        "cache_hits": 1,
    }
    assert 0 < await redis.ttl(f"graphgate:tpm:{{{user}}}:{int((clock.now - 1) // 60)}") <= 120
    await redis.aclose()
