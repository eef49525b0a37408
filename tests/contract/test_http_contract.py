"""The HTTP contract, in process: what a client sees for a turn, a refusal by the guard or the
limit, and every error body, without a server process."""

from __future__ import annotations

from pathlib import Path

import httpx
from httpx_sse import aconnect_sse

from tests.clock import SetClock
from tests.contract.conftest import AppClient

ASK = {"input": {"question": "Hello there"}}


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, str]:
    """The one error shape: status, a stable code, a message and the response's trace id."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error: dict[str, str] = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert error["trace_id"] == response.headers["X-Trace-Id"]
    return error


async def test_a_turn_gets_the_reply_with_its_usage(app_client: AppClient) -> None:
    async with app_client() as client:
        response = await client.post("/chat/invoke", json=ASK)
    assert response.status_code == 200
    output = response.json()["output"]
    assert output["type"] == "ai"
    assert "You said: Hello there" in output["content"]
    assert output["usage_metadata"]["output_tokens"] > 0
    assert output["response_metadata"]["model"] == "demo:demo"


async def test_a_stream_sends_the_reply_in_chunks_then_ends(app_client: AppClient) -> None:
    async with (
        app_client() as client,
        aconnect_sse(client, "POST", "/chat/stream", json=ASK) as source,
    ):
        events = [event async for event in source.aiter_sse()]
    chunks = [event.json()["content"] for event in events if event.event == "data"]
    assert len(chunks) > 3
    assert "You said: Hello there" in "".join(chunks)
    assert events[-1].event == "end"


async def test_a_turn_over_max_input_tokens_is_input_too_long(app_client: AppClient) -> None:
    async with app_client(max_input_tokens=50) as client:
        response = await client.post("/chat/invoke", json={"input": {"question": "word " * 60}})
    assert "limit" in assert_error(response, 400, "input_too_long")["message"]


async def test_an_empty_question_is_invalid_input(app_client: AppClient) -> None:
    async with app_client() as client:
        response = await client.post("/chat/stream", json={"input": {"question": "  "}})
    assert_error(response, 400, "invalid_input")


async def test_malformed_json_is_invalid_input_not_a_500(app_client: AppClient) -> None:
    async with app_client() as client:
        response = await client.post(
            "/chat/invoke", content=b'{"input": ', headers={"content-type": "application/json"}
        )
    assert_error(response, 400, "invalid_input")


async def test_a_body_of_the_wrong_shape_is_a_validation_error(app_client: AppClient) -> None:
    async with app_client() as client:
        response = await client.post("/chat/invoke", json={"input": {"question": 7}})
    assert_error(response, 422, "validation_error")


async def test_a_body_over_the_limit_is_payload_too_large(app_client: AppClient) -> None:
    async with app_client(max_body_bytes=2048) as client:
        response = await client.post("/chat/invoke", json={"input": {"question": "x" * 4096}})
    assert_error(response, 413, "payload_too_large")


async def test_the_request_past_the_rate_limit_gets_429_with_retry_after(
    app_client: AppClient, clock: SetClock
) -> None:
    async with app_client(rate_limit_max=2, rate_limit_window=60) as client:
        statuses = [(await client.post("/chat/invoke", json=ASK)).status_code for _ in range(2)]
        refused = await client.post("/chat/invoke", json=ASK)
        clock.now += 60  # the window slides past the first two
        again = await client.post("/chat/invoke", json=ASK)
    assert statuses == [200, 200]
    assert_error(refused, 429, "rate_limited")
    assert refused.headers["Retry-After"] == "60"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert again.status_code == 200


async def test_the_tokens_of_a_minute_run_out_until_the_minute_turns(
    app_client: AppClient, clock: SetClock
) -> None:
    # A turn reserves its input and max_tokens (20): within 60, until its use is settled.
    short = {**ASK, "config": {"configurable": {"max_tokens": 20}}}
    async with app_client(tokens_per_minute=60) as client:
        first = await client.post("/chat/invoke", json=short)
        assert first.status_code == 200
        # About 30 tokens used and about 30 reserved by the next turn: over 60.
        refused = await client.post("/chat/invoke", json=short)
        clock.now += 30  # 00:01:00, a new minute
        again = await client.post("/chat/invoke", json=short)
    assert_error(refused, 429, "budget_exceeded")
    assert refused.headers["Retry-After"] == "30"
    assert again.status_code == 200


async def test_a_request_without_a_credential_is_unauthenticated(
    app_client: AppClient, tmp_path: Path
) -> None:
    keys = tmp_path / "api-keys"
    keys.write_text("# principal sha256-of-key [options]\n")
    async with app_client(auth_mode="api_key", api_keys_file=keys) as client:
        response = await client.post("/chat/invoke", json=ASK)
    assert_error(response, 401, "unauthenticated")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_someone_elses_or_no_session_is_not_found(app_client: AppClient) -> None:
    async with app_client() as client:
        turn = {**ASK, "config": {"configurable": {"session_id": "s1"}}}
        assert (await client.post("/chat/invoke", json=turn)).status_code == 200
        mine = await client.get("/chat/sessions/s1")
        theirs = await client.get("/chat/sessions/s1", headers={"X-User-Id": "mallory"})
    assert len(mine.json()["messages"]) == 2
    assert_error(theirs, 404, "not_found")


async def test_v1_refuses_what_it_cannot_honour_in_openais_shape(app_client: AppClient) -> None:
    async with app_client() as client:
        response = await client.post(
            "/v1/chat/completions",
            json={"model": "graphgate", "n": 2, "messages": [{"role": "user", "content": "hi"}]},
        )
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("unsupported_parameter", "n")
