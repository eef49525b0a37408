"""JSON logs: one parseable line per request carrying the trace id the response shows, the
caller's trace id kept, and no secret or prompt in any line."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from tests.live_servers import Graphgate, StartGraphgate

SERVER_KEY = "sk-server-key-never-logged-1234"
CLIENT_SECRETS = ("Bearer sk-client-authorization-5678", "sk-client-api-key-9012")


@pytest.fixture(scope="module")
def logged_server(graphgate_factory: StartGraphgate) -> Graphgate:
    return graphgate_factory(OPENAI_API_KEY=SERVER_KEY)


def access_line(server: Graphgate, trace_id: str) -> dict[str, Any]:
    line = server.process.wait_for_line(
        lambda line: trace_id in line and '"graphgate.access"' in line
    )
    record: dict[str, Any] = json.loads(line)
    return record


def test_each_request_has_an_access_line_with_the_trace_id_of_its_response(
    logged_server: Graphgate, user: str, marker: str
) -> None:
    response = httpx.post(
        f"{logged_server.url}/chat/invoke",
        json={"input": {"question": marker}, "config": {"configurable": {"session_id": "s1"}}},
        headers={"X-User-Id": user},
    )
    record = access_line(logged_server, response.headers["X-Trace-Id"])
    assert record["level"] == "info"
    assert record["timestamp"]
    assert (record["method"], record["path"], record["status"]) == ("POST", "/chat/invoke", 200)
    assert record["duration_ms"] > 0
    assert (record["principal"], record["session"]) == (user, "s1")
    assert record["model"] == "openai:gpt-primary"
    assert record["fallback_used"] is False
    assert record["retries"] == 0
    assert record["cache_hit"] is False
    assert record["tokens"] > 0


def test_a_caller_traceparent_is_kept_in_header_and_log(logged_server: Graphgate) -> None:
    trace_id = uuid.uuid4().hex
    traceparent = f"00-{trace_id}-00f067aa0ba902b7-01"
    response = httpx.get(f"{logged_server.url}/health/live", headers={"traceparent": traceparent})
    assert response.headers["X-Trace-Id"] == trace_id
    assert access_line(logged_server, trace_id)["path"] == "/health/live"


def test_no_secret_and_no_prompt_reaches_any_log_line(
    logged_server: Graphgate, user: str, marker: str
) -> None:
    headers = {
        "Authorization": CLIENT_SECRETS[0],
        "X-Api-Key": CLIENT_SECRETS[1],
        "X-User-Id": user,
    }
    requests = [
        {"input": {"question": f"secret question {marker}"}},
        {"input": {"question": ""}},  # refused: 400
        {"input": {"question": 7}},  # malformed: 422
    ]
    trace_ids = [
        httpx.post(f"{logged_server.url}/chat/invoke", json=body, headers=headers).headers[
            "X-Trace-Id"
        ]
        for body in requests
    ]
    for trace_id in trace_ids:
        access_line(logged_server, trace_id)
    lines = logged_server.process.lines
    for line in lines:
        json.loads(line)  # every line is one JSON object
    text = "".join(lines)
    assert SERVER_KEY not in text
    assert not [secret for secret in CLIENT_SECRETS if secret in text]
    assert marker not in text


def test_log_prompts_puts_the_question_in_the_access_line(
    graphgate_factory: StartGraphgate, user: str, marker: str
) -> None:
    server = graphgate_factory(LOG_PROMPTS="true")
    response = httpx.post(
        f"{server.url}/chat/invoke",
        json={"input": {"question": f"log me {marker}"}},
        headers={"X-User-Id": user},
    )
    assert access_line(server, response.headers["X-Trace-Id"])["prompt"] == f"log me {marker}"
