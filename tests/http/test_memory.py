"""Session memory in embedded mode and on every Redis flavour (Stack, no modules, Cluster):
turns see earlier turns, sessions are apart, history is bounded, sessions expire and are
deleted for real."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import redis
from langchain_core.runnables import Runnable
from langserve import RemoteRunnable

from tests.conftest import ALL_MODES, REDIS_FLAVOURS, mode_fixture
from tests.live_servers import Graphgate, StartGraphgate
from tests.upstream import Upstream

mode = mode_fixture(ALL_MODES)


def session(server: Graphgate, user: str, session_id: str) -> Runnable[Any, Any]:
    return RemoteRunnable(server.chat_url, headers={"X-User-Id": user}, timeout=30).with_config(
        configurable={"session_id": session_id}
    )


def contents(messages: list[dict[str, str]]) -> list[str]:
    return [m["content"] for m in messages]


def test_second_turn_sends_the_first_question_and_answer_upstream(
    server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    s1 = session(server, user, "s1")
    s1.invoke({"question": f"one {marker}"})
    s1.invoke({"question": f"two {marker}"})
    second_prompt = upstream.prompts(marker)[-1]
    assert contents(second_prompt) == [
        f"one {marker}",
        f"Echo: one {marker}",
        f"two {marker}",
    ]


def test_another_session_starts_empty(
    server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    session(server, user, "s1").invoke({"question": f"one {marker}"})
    session(server, user, "s2").invoke({"question": f"fresh {marker}"})
    assert contents(upstream.prompts(f"fresh {marker}")[-1]) == [f"fresh {marker}"]


def test_another_principal_cannot_see_a_session(
    server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    session(server, user, "s1").invoke({"question": f"mine {marker}"})
    session(server, f"{user}-other", "s1").invoke({"question": f"theirs {marker}"})
    assert contents(upstream.prompts(f"theirs {marker}")[-1]) == [f"theirs {marker}"]
    response = httpx.get(f"{server.url}/chat/sessions/s1", headers={"X-User-Id": f"{user}-x"})
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_thirty_turns_keep_prompt_and_stored_history_within_the_bound(
    server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    s1 = session(server, user, "long")
    for turn in range(30):
        s1.invoke({"question": f"turn {turn} {marker}"})
    prompts = upstream.prompts(marker)
    assert len(prompts) == 30
    history_sizes = [len(prompt) - 1 for prompt in prompts]  # all but the new question
    assert max(history_sizes) == 40
    assert contents(prompts[-1])[-1] == f"turn 29 {marker}"
    stored = httpx.get(f"{server.url}/chat/sessions/long", headers={"X-User-Id": user})
    assert stored.status_code == 200
    assert len(stored.json()["messages"]) == 40


def test_deleting_a_session_forgets_it(server: Graphgate, upstream: Upstream, user: str) -> None:
    session(server, user, "gone").invoke({"question": "remember me"})
    headers = {"X-User-Id": user}
    assert httpx.get(f"{server.url}/chat/sessions/gone", headers=headers).status_code == 200
    assert httpx.delete(f"{server.url}/chat/sessions/gone", headers=headers).status_code == 204
    assert httpx.get(f"{server.url}/chat/sessions/gone", headers=headers).status_code == 404


@pytest.mark.parametrize("mode", REDIS_FLAVOURS)
def test_a_deleted_session_leaves_no_checkpoint_in_redis(
    server: Graphgate, redis_store: redis.Redis | redis.RedisCluster, user: str
) -> None:
    session(server, user, "gone").invoke({"question": "remember me"})
    pattern = f"graphgate:checkpoint:{{{user}:gone}}"
    assert list(redis_store.scan_iter(match=pattern)) == [pattern]
    httpx.delete(f"{server.url}/chat/sessions/gone", headers={"X-User-Id": user})
    assert list(redis_store.scan_iter(match=pattern)) == []


@pytest.mark.parametrize("mode", REDIS_FLAVOURS)
def test_redis_sessions_survive_a_server_restart(
    graphgate_factory: StartGraphgate, mode: str, upstream: Upstream, user: str, marker: str
) -> None:
    first = graphgate_factory(mode, fresh=True)
    s1 = session(first, user, "s1")
    s1.invoke({"question": f"one {marker}"})
    s1.invoke({"question": f"two {marker}"})
    first.process.stop()
    first.process.start()
    session(first, user, "s1").invoke({"question": f"three {marker}"})
    first.process.stop()
    assert contents(upstream.prompts(marker)[-1]) == [
        f"one {marker}",
        f"Echo: one {marker}",
        f"two {marker}",
        f"Echo: two {marker}",
        f"three {marker}",
    ]


@pytest.mark.parametrize("mode", REDIS_FLAVOURS)
def test_a_turn_without_a_session_stores_no_checkpoint(
    server: Graphgate, redis_store: redis.Redis | redis.RedisCluster, user: str
) -> None:
    client: RemoteRunnable[Any, Any] = RemoteRunnable(
        server.chat_url, headers={"X-User-Id": user}, timeout=30
    )
    client.invoke({"question": "one-off"})
    keys = [str(key) for key in redis_store.scan_iter(match=f"*{user}*")]
    assert keys
    assert not [key for key in keys if key.startswith("graphgate:checkpoint:")]


@pytest.mark.parametrize("mode", REDIS_FLAVOURS)
def test_every_key_a_session_leaves_in_redis_expires(
    server: Graphgate, redis_store: redis.Redis | redis.RedisCluster, user: str
) -> None:
    session(server, user, "s1").invoke({"question": "hello"})
    keys = redis_store.scan_iter(match=f"*{user}*")
    ttls = {str(key): redis_store.ttl(key) for key in keys}
    assert all(ttl > 0 for ttl in ttls.values()), ttls
    checkpoints = [ttl for key, ttl in ttls.items() if key.startswith("graphgate:checkpoint:")]
    assert checkpoints, ttls
    assert all(ttl <= 3600 for ttl in checkpoints), ttls  # SESSION_TTL
    assert any(key.startswith("graphgate:ratelimit:") for key in ttls), ttls
