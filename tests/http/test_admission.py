"""Guard and limit refuse with an HTTP status before any stream begins, in both modes; the
rate limit on every Redis flavour (Stack, no modules, Cluster) too."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import ALL_MODES
from tests.live_servers import Graphgate, StartGraphgate
from tests.sse import post_stream

LIMIT = 3


@pytest.fixture
def strict_server(graphgate_factory: StartGraphgate, mode: str) -> Graphgate:
    return graphgate_factory(mode, RATE_LIMIT_MAX=str(LIMIT))


def invoke(server: Graphgate, user: str, payload: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{server.url}/chat/invoke", json=payload, headers={"X-User-Id": user}, timeout=30
    )


def test_input_over_max_input_tokens_is_400_on_invoke(server: Graphgate, user: str) -> None:
    response = invoke(server, user, {"input": {"question": "word " * 2100}})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "input_too_long"


def test_input_over_max_input_tokens_is_400_on_stream(server: Graphgate, user: str) -> None:
    result = post_stream(
        f"{server.url}/chat/stream",
        {"input": {"question": "word " * 2100}},
        {"X-User-Id": user},
    )
    assert result.status == 400
    assert result.body["error"]["code"] == "input_too_long"


def test_empty_input_is_400_invalid_input(server: Graphgate, user: str) -> None:
    response = invoke(server, user, {"input": {"question": "  "}})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_input"


@pytest.mark.parametrize("mode", ALL_MODES)
def test_fourth_invoke_in_window_gets_429_with_retry_after(
    strict_server: Graphgate, user: str
) -> None:
    remaining = []
    for turn in range(LIMIT):
        response = invoke(strict_server, user, {"input": {"question": f"q{turn}"}})
        assert response.status_code == 200
        remaining.append(response.headers["X-RateLimit-Remaining"])
    assert remaining == ["2", "1", "0"]
    refused = invoke(strict_server, user, {"input": {"question": "one too many"}})
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert refused.headers["X-RateLimit-Limit"] == str(LIMIT)
    assert 1 <= int(refused.headers["Retry-After"]) <= 60


@pytest.mark.parametrize("mode", ALL_MODES)
def test_fourth_stream_in_window_gets_429_before_streaming(
    strict_server: Graphgate, user: str
) -> None:
    url = f"{strict_server.url}/chat/stream"
    for turn in range(LIMIT):
        result = post_stream(url, {"input": {"question": f"q{turn}"}}, {"X-User-Id": user})
        assert result.status == 200
        assert result.named("end")
    refused = post_stream(url, {"input": {"question": "one too many"}}, {"X-User-Id": user})
    assert refused.status == 429
    assert refused.body["error"]["code"] == "rate_limited"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert int(refused.headers["Retry-After"]) >= 1


def batch(server: Graphgate, user: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{server.url}/chat/batch", json=body, headers={"X-User-Id": user}, timeout=30
    )


@pytest.mark.parametrize("mode", ALL_MODES)
def test_a_batch_counts_each_input_against_the_limit(strict_server: Graphgate, user: str) -> None:
    assert invoke(strict_server, user, {"input": {"question": "first"}}).status_code == 200
    inputs = [{"question": f"q{i}"} for i in range(LIMIT)]
    assert batch(strict_server, user, {"inputs": inputs}).status_code == 429


def test_a_batch_larger_than_the_rate_limit_is_413_not_a_hopeless_429(
    strict_server: Graphgate, user: str
) -> None:
    inputs = [{"question": f"q{i}"} for i in range(LIMIT + 1)]
    response = batch(strict_server, user, {"inputs": inputs})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_a_batch_of_turns_of_one_session_is_400(server: Graphgate, user: str) -> None:
    inputs = [{"question": "a"}, {"question": "b"}]
    config = {"configurable": {"session_id": "s1"}}
    response = batch(server, user, {"inputs": inputs, "config": config})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_input"


@pytest.mark.parametrize("mode", ALL_MODES)
def test_principals_have_separate_windows(strict_server: Graphgate, user: str) -> None:
    for turn in range(LIMIT):
        assert invoke(strict_server, user, {"input": {"question": f"q{turn}"}}).status_code == 200
    other = invoke(strict_server, f"{user}-b", {"input": {"question": "mine"}})
    assert other.status_code == 200
