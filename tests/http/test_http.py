"""The HTTP surface around the chat: playground, health, errors, trace ids, limits."""

from __future__ import annotations

import httpx
import pytest

from tests.live_servers import Graphgate, StartGraphgate


@pytest.fixture(scope="module")
def embedded(graphgate_factory: StartGraphgate) -> Graphgate:
    return graphgate_factory()


def test_the_playground_page_is_served(embedded: Graphgate) -> None:
    response = httpx.get(f"{embedded.url}/chat/playground/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<script" in response.text


def test_the_chat_schemas_describe_question_and_messages(embedded: Graphgate) -> None:
    schema = httpx.get(f"{embedded.url}/chat/input_schema").json()
    assert {"question", "messages"} <= set(schema["properties"])
    config = httpx.get(f"{embedded.url}/chat/config_schema").json()
    assert "session_id" in str(config)


def test_a_caller_trace_id_is_kept_and_returned(embedded: Graphgate) -> None:
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    headers = {"traceparent": f"00-{trace}-00f067aa0ba902b7-01"}
    response = httpx.get(f"{embedded.url}/health/live", headers=headers)
    assert response.headers["X-Trace-Id"] == trace


def test_an_invalid_session_id_is_400(embedded: Graphgate) -> None:
    response = httpx.post(
        f"{embedded.url}/chat/invoke",
        json={"input": {"question": "hi"}, "config": {"configurable": {"session_id": "a/b"}}},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_input"


def test_malformed_input_is_422_with_the_error_body(embedded: Graphgate) -> None:
    response = httpx.post(f"{embedded.url}/chat/invoke", json={"input": {"question": 3}})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["trace_id"] == response.headers["X-Trace-Id"]


def test_a_body_over_max_body_bytes_is_413(embedded: Graphgate) -> None:
    response = httpx.post(
        f"{embedded.url}/chat/invoke", json={"input": {"question": "x" * 2_000_000}}
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_an_unknown_route_is_404_with_the_error_body(embedded: Graphgate) -> None:
    response = httpx.get(f"{embedded.url}/nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
