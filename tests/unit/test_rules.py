"""The pure rules (limit decision, history trim, turn validation), without servers."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.messages import AIMessage, HumanMessage
from pydantic import ValidationError
from redis.asyncio import Redis

from graphs.cache.reply_cache import CacheLookup
from graphs.cache.semantic_cache import InMemorySemanticCache
from graphs.errors import InputTooLong, InvalidInput
from graphs.limits.concurrency import stripe_shares
from graphs.limits.ratelimit import decide
from graphs.model.tokens import TokenCounter, load_encoding
from graphs.nodes.guard import validate_turn
from graphs.settings import Settings
from graphs.store.redis_client import build_redis
from graphs.store.redis_connection import TcpConnection, TlsConnection, UnixConnection
from serving.startup_checks import redis_problem


@pytest.fixture(scope="module")
def counter() -> TokenCounter:
    return TokenCounter(load_encoding("gpt-4o-mini", None))


def test_requests_within_the_limit_are_admitted_with_what_remains() -> None:
    decision = decide([1.0, 2.0], 3.0, limit=3, window=60, cost=1)
    assert (decision.allowed, decision.remaining) == (True, 0)


def test_a_full_window_refuses_until_the_oldest_request_leaves_it() -> None:
    decision = decide([10.0, 20.0, 30.0], 40.0, limit=3, window=60, cost=1)
    assert (decision.allowed, decision.remaining, decision.retry_after) == (False, 0, 30.0)


def test_a_batch_waits_for_as_many_requests_to_leave_as_it_needs() -> None:
    decision = decide([10.0, 20.0, 30.0], 40.0, limit=4, window=60, cost=3)
    assert decision.retry_after == 40.0


def test_a_batch_larger_than_the_limit_is_told_to_wait_a_whole_window() -> None:
    assert decide([], 0.0, limit=2, window=60, cost=5).retry_after == 60


def test_a_question_becomes_the_last_human_message_of_the_turn(counter: TokenCounter) -> None:
    turn = validate_turn("hi", [HumanMessage("before"), AIMessage("ok")], counter, 100)
    assert [m.text for m in turn.messages] == ["before", "ok", "hi"]


@pytest.mark.parametrize("question", ["", "   "])
def test_an_empty_turn_is_invalid_input(question: str, counter: TokenCounter) -> None:
    with pytest.raises(InvalidInput):
        validate_turn(question, [], counter, 100)


def test_a_turn_over_the_token_limit_is_input_too_long(counter: TokenCounter) -> None:
    with pytest.raises(InputTooLong, match="limit is 10"):
        validate_turn("word " * 50, [], counter, 10)


class CountingEmbeddings(DeterministicFakeEmbedding):
    calls: int = 0

    def embed_query(self, text: str) -> list[float]:
        self.calls += 1
        return super().embed_query(text)


async def test_a_semantic_cache_miss_embeds_its_question_once() -> None:
    embeddings = CountingEmbeddings(size=8)
    cache = InMemorySemanticCache(embeddings, threshold=0.2, ttl_seconds=60, max_entries=2)
    lookup = CacheLookup("user", "context", "What is a vector database?")
    await cache.put(CacheLookup("user", "context", "seed"), {"content": "s", "model": "m"})
    assert await cache.get(lookup) is None
    await cache.put(lookup, {"content": "answer", "model": "m"})
    assert embeddings.calls == 2  # the seed, then the question once for its get and put
    assert await cache.get(lookup) == {"content": "answer", "model": "m"}
    other_scope = CacheLookup("someone-else", "context", lookup.question)
    assert await cache.get(other_scope) is None


def test_a_redis_url_of_another_scheme_is_refused_at_start_up() -> None:
    with pytest.raises(ValidationError, match="redis://, rediss:// or unix://"):
        Settings(redis_url="http://127.0.0.1:6379")
    assert Settings(redis_url="rediss://cache.example:6380/0").redis_url is not None


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("redis://127.0.0.1:6379/0", TcpConnection),
        ("rediss://cache.example:6380/0", TlsConnection),
        ("unix:///run/redis.sock", UnixConnection),
    ],
)
def test_every_redis_scheme_gets_the_connection_whose_commands_stay_cancellable(
    url: str, kind: type
) -> None:
    redis = build_redis(Settings(redis_url=url))
    assert isinstance(redis, Redis)
    assert type(redis.connection_pool.make_connection()) is kind  # type: ignore[no-untyped-call]


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"redis_url": "unix:///run/redis.sock", "redis_cluster": True}, "unix socket"),
        ({"redis_url": "redis://node:6379/2", "redis_cluster": True}, "database 0"),
        (
            {"redis_url": "redis://node:6379", "redis_cluster": True, "cache_mode": "semantic"},
            "CACHE_MODE=semantic",
        ),
        ({"redis_cluster": True}, "REDIS_URL"),
        ({"redis_wait_replicas": 1, "redis_wait_timeout": 5.0}, "REDIS_WAIT_TIMEOUT"),
    ],
)
def test_redis_settings_that_cannot_work_are_refused_by_name(
    settings: dict[str, Any], named: str
) -> None:
    problem = redis_problem(Settings(**settings))
    assert problem is not None
    assert named in problem


def test_a_cluster_node_with_database_zero_and_a_short_wait_is_fine() -> None:
    settings = Settings(
        redis_url="rediss://node:6379/0",
        redis_cluster=True,
        cache_mode="exact",
        redis_wait_replicas=1,
        redis_wait_timeout=1.0,
    )
    assert redis_problem(settings) is None


@pytest.mark.parametrize(
    ("limit", "stripes", "shares"),
    [(5, 8, [1, 1, 1, 1, 1]), (10, 3, [4, 3, 3]), (16, 8, [2] * 8), (7, 1, [7])],
)
def test_the_global_limit_is_split_over_stripes_that_add_up_to_it(
    limit: int, stripes: int, shares: list[int]
) -> None:
    assert stripe_shares(limit, stripes) == shares
    assert sum(shares) == limit
