"""The exact LLM cache: one upstream call for a repeated prompt, streamed like a fresh answer,
and never served across principals unless the scope is global."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk
from langchain_core.runnables import Runnable
from langserve import RemoteRunnable

from tests.live_servers import Graphgate, StartGraphgate
from tests.upstream import Upstream


@pytest.fixture
def cached_server(graphgate_factory: StartGraphgate, mode: str) -> Graphgate:
    return graphgate_factory(mode, CACHE_MODE="exact")


def chat(server: Graphgate, user: str, session: str | None = None) -> Runnable[Any, Any]:
    client: RemoteRunnable[Any, Any] = RemoteRunnable(
        server.chat_url, headers={"X-User-Id": user}, timeout=30
    )
    if session is None:
        return client
    return client.with_config(configurable={"session_id": session})


def test_the_same_question_in_fresh_sessions_calls_the_upstream_once(
    cached_server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    first = chat(cached_server, user, "a").invoke({"question": f"what is {marker}?"})
    second = chat(cached_server, user, "b").invoke({"question": f"what is {marker}?"})
    assert upstream.stats(marker)["requests"] == 1
    assert second.content == first.content
    assert first.response_metadata["cache_hit"] is False
    assert second.response_metadata["cache_hit"] is True
    assert second.response_metadata["cost_usd"] == 0.0


def test_a_cached_answer_streams_token_by_token(
    cached_server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    upstream.behave(marker, tokens=12)
    question = {"question": f"stream {marker}"}
    fresh = list(chat(cached_server, user).stream(question))
    cached = list(chat(cached_server, user).stream(question))
    assert upstream.stats(marker)["requests"] == 1
    assert len([c for c in cached if c.content]) == 12
    reply = cached[0]
    for chunk in cached[1:]:
        reply += chunk
    assert isinstance(reply, AIMessageChunk)
    assert reply.content == "".join(str(c.content) for c in fresh)
    assert reply.response_metadata["cache_hit"] is True


def test_a_different_history_is_a_different_prompt(
    cached_server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    chat(cached_server, user).invoke({"question": f"q {marker}"})
    in_session = chat(cached_server, user, "with-history")
    in_session.invoke({"question": f"earlier {marker}"})
    in_session.invoke({"question": f"q {marker}"})
    assert upstream.stats(f"q {marker}")["requests"] == 2


def test_one_principal_never_gets_another_principals_cached_answer(
    cached_server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    chat(cached_server, user).invoke({"question": f"secret {marker}"})
    other = chat(cached_server, f"{user}-b").invoke({"question": f"secret {marker}"})
    assert other.response_metadata["cache_hit"] is False
    assert upstream.stats(marker)["requests"] == 2


def test_global_scope_shares_answers_between_principals(
    graphgate_factory: StartGraphgate, upstream: Upstream, user: str, marker: str
) -> None:
    server = graphgate_factory("redis", CACHE_MODE="exact", CACHE_SCOPE="global")
    chat(server, user).invoke({"question": f"shared {marker}"})
    other = chat(server, f"{user}-b").invoke({"question": f"shared {marker}"})
    assert other.response_metadata["cache_hit"] is True
    assert upstream.stats(marker)["requests"] == 1
