"""Retries, fallback and the overall deadline, against an upstream that misbehaves on cue."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from langserve import RemoteRunnable

from tests.conftest import FALLBACK_MODEL, PRIMARY_MODEL
from tests.live_servers import Graphgate, StartGraphgate
from tests.sse import post_stream
from tests.upstream import Upstream

DEADLINE = 2.0


@pytest.fixture(scope="module")
def deadline_server(graphgate_factory: StartGraphgate) -> Graphgate:
    return graphgate_factory(REQUEST_TIMEOUT=str(DEADLINE))


def test_two_429s_with_retry_after_are_retried_to_an_answer(
    graphgate_factory: StartGraphgate, upstream: Upstream, user: str, marker: str
) -> None:
    upstream.behave(marker, model=PRIMARY_MODEL, statuses=[429, 429], retry_after=1)
    chat: RemoteRunnable[Any, Any] = RemoteRunnable(
        graphgate_factory().chat_url, headers={"X-User-Id": user}, timeout=30
    )
    started = time.monotonic()
    reply = chat.invoke({"question": marker})
    assert reply.content == f"Echo: {marker}"
    assert upstream.stats(marker)["requests"] == 3
    assert reply.response_metadata["retries"] == 2
    assert time.monotonic() - started >= 2  # Retry-After: 1, honoured twice


def test_a_failing_primary_falls_back_and_says_so(
    graphgate_factory: StartGraphgate, upstream: Upstream, user: str, marker: str
) -> None:
    upstream.behave(marker, model=PRIMARY_MODEL, statuses=[500] * 10)
    chat: RemoteRunnable[Any, Any] = RemoteRunnable(
        graphgate_factory().chat_url, headers={"X-User-Id": user}, timeout=30
    )
    reply = chat.invoke({"question": marker})
    assert reply.content == f"Echo: {marker}"
    assert reply.response_metadata["model_name"] == FALLBACK_MODEL
    assert reply.response_metadata["model"] == f"openai:{FALLBACK_MODEL}"
    assert reply.response_metadata["fallback_used"] is True
    assert reply.response_metadata["retries"] == 2  # the primary's, before falling back
    models = [body["model"] for body in upstream.stats(marker)["bodies"]]
    assert models == [PRIMARY_MODEL] * 3 + [FALLBACK_MODEL]


def test_an_invoke_asks_for_the_whole_reply_and_a_stream_streams_it(
    graphgate_factory: StartGraphgate, upstream: Upstream, user: str, marker: str
) -> None:
    """Nobody reads an invoke's tokens: the provider is asked for its reply whole (one
    response to parse), with the same reply and usage a stream ends with."""
    upstream.behave(marker, model=PRIMARY_MODEL, tokens=12)
    server = graphgate_factory()
    chat: RemoteRunnable[Any, Any] = RemoteRunnable(
        server.chat_url, headers={"X-User-Id": user}, timeout=30
    )
    invoked = chat.invoke({"question": f"whole {marker}"})
    streamed = list(chat.stream({"question": f"streamed {marker}"}))
    asked = {
        body["messages"][-1]["content"].split()[0]: body.get("stream", False)
        for body in upstream.stats(marker)["bodies"]
    }
    assert asked == {"whole": False, "streamed": True}
    assert len(streamed) > 12  # token by token, then the closing chunk
    whole = sum(streamed[1:], streamed[0])
    assert invoked.content == whole.content
    assert invoked.usage_metadata == whole.usage_metadata
    assert invoked.response_metadata["model_name"] == PRIMARY_MODEL
    assert invoked.response_metadata["finish_reason"] == "stop"


def test_a_hanging_upstream_gets_504_on_invoke_within_the_deadline(
    deadline_server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    upstream.behave(marker, hang=True)
    started = time.monotonic()
    response = httpx.post(
        f"{deadline_server.url}/chat/invoke",
        json={"input": {"question": marker}},
        headers={"X-User-Id": user},
        timeout=30,
    )
    assert time.monotonic() - started < DEADLINE + 1
    assert response.status_code == 504
    error = response.json()["error"]
    assert error["code"] == "upstream_timeout"
    assert error["trace_id"] == response.headers["X-Trace-Id"]


def test_a_hanging_upstream_ends_a_stream_with_a_504_error_event(
    deadline_server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    upstream.behave(marker, hang=True)
    started = time.monotonic()
    result = post_stream(
        f"{deadline_server.url}/chat/stream",
        {"input": {"question": marker}},
        {"X-User-Id": user},
    )
    assert time.monotonic() - started < DEADLINE + 1
    assert result.status == 200  # the stream had begun: the error travels inside it
    (error,) = result.named("error")
    assert error["status_code"] == 504
    assert error["error"]["code"] == "upstream_timeout"
    assert error["error"]["trace_id"] == result.headers["X-Trace-Id"]


def test_an_upstream_that_drops_mid_stream_ends_the_stream_with_502(
    graphgate_factory: StartGraphgate, upstream: Upstream, user: str, marker: str
) -> None:
    upstream.behave(marker, tokens=10, drop_after=4)
    result = post_stream(
        f"{graphgate_factory().url}/chat/stream",
        {"input": {"question": marker}},
        {"X-User-Id": user},
    )
    texts = [d["content"] for d in result.named("data") if d.get("content")]
    assert texts == ["w1", " w2", " w3", " w4"]
    (error,) = result.named("error")
    assert error["status_code"] == 502
    assert error["error"]["code"] == "upstream_error"


def test_a_malformed_upstream_chunk_is_an_upstream_error_not_a_500(
    graphgate_factory: StartGraphgate, upstream: Upstream, user: str, marker: str
) -> None:
    upstream.behave(marker, model=PRIMARY_MODEL, tokens=6, malformed=True)
    # Only a streamed reply has chunks to break: the invoke streams it when told to.
    response = httpx.post(
        f"{graphgate_factory(STREAM_UPSTREAM_ON_INVOKE='true').url}/chat/invoke",
        json={"input": {"question": marker}},
        headers={"X-User-Id": user},
        timeout=30,
    )
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_error"
