"""The graph keeps the budgets where no HTTP layer admits its runs (`langgraph dev`): its limit
node reserves each turn's worst case and the llm node settles it, so concurrent runs cannot
overshoot `TOKENS_PER_MINUTE`, on the in-memory stores and on Redis (also the Redis Cluster:
the reservation script touches one principal's hash-tagged keys only)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from langchain_core.messages import HumanMessage

from graphs.chat import build_chat_graph
from graphs.errors import BudgetExceeded
from graphs.limits.budget import BudgetCaps, RedisBudget, Reservation
from graphs.limits.usage import RedisUsageLedger
from graphs.route_services import build_services
from graphs.settings import Settings
from tests.conftest import PRIMARY_MODEL, mode_fixture
from tests.redis_servers import RedisFlavours
from tests.upstream import Upstream

mode = mode_fixture(["embedded", "redis", "cluster"])
MAX_TOKENS = 30


async def test_concurrent_graph_runs_never_overshoot_tokens_per_minute(
    mode: str, redis_flavours: RedisFlavours, upstream: Upstream, user: str, marker: str
) -> None:
    redis = None if mode == "embedded" else redis_flavours.async_client(mode)
    base = Settings(
        openai_base_url=upstream.api_url,
        llm_model=PRIMARY_MODEL,
        llm_fallback_model=None,
        redis_prefix=f"t{uuid.uuid4().hex[:8]}:",
        rate_limit_max=1000,
    )
    question = f"how much {marker}"
    probe = build_services(base, None)
    worst = (
        probe.prompt_tokens + probe.counter.count_messages([HumanMessage(question)]) + MAX_TOKENS
    )
    cap = 3 * worst + worst // 2
    services = build_services(base.model_copy(update={"tokens_per_minute": cap}), redis)
    graph = build_chat_graph(services)
    upstream.behave(marker, tokens=20, latency_ms=400)
    config: Any = {"configurable": {"principal": user, "max_tokens": MAX_TOKENS}}
    left = 60 - time.time() % 60
    if left < 15:  # the cap is per clock minute: the test must fit in one
        await asyncio.sleep(left + 0.5)
    results = await asyncio.gather(
        *(graph.ainvoke({"question": question}, config) for _ in range(20)),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(r, BudgetExceeded) for r in refused), refused
    assert 3 <= 20 - len(refused) < 20
    spending = await services.usage.spending(user)
    assert 0 < spending.tokens_this_minute <= cap
    # Every reservation was settled: what is left of the cap is open to a new run.
    if cap - spending.tokens_this_minute >= worst:
        await graph.ainvoke({"question": question}, config)
    if redis is not None:
        await redis.aclose()


async def test_a_short_lived_reservation_never_shortens_a_long_lived_ones(
    redis_flavours: RedisFlavours,
) -> None:
    """Routes derive different lifetimes: the held set lives as long as its longest one."""
    redis = redis_flavours.async_client("redis")
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    budget = RedisBudget(redis, RedisUsageLedger(redis, prefix, 1), prefix)
    caps = BudgetCaps(tokens_per_minute=1000)
    try:
        assert await budget.reserve(Reservation("p", 10, 0, "long"), caps, ttl=600) is None
        assert await budget.reserve(Reservation("p", 10, 0), caps, ttl=5) is None
        assert await redis.pttl(f"{prefix}reserved:{{p}}") > 500_000
    finally:
        await redis.aclose()
