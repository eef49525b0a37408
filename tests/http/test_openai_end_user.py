"""`/v1`'s `user` field names the end user, as in OpenAI's API, never a session: any text is
accepted (up to OpenAI's 128 characters), it goes to the access line, and only `X-Session-Id`
keeps a conversation."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from tests.clients.test_openai_compat import sdk
from tests.live_servers import Graphgate
from tests.upstream import Upstream


def ask(client: openai.OpenAI, question: str, end_user: str) -> str:
    completion = client.chat.completions.create(
        model="graphgate", messages=[{"role": "user", "content": question}], user=end_user
    )
    return completion.choices[0].message.content or ""


def access_line(server: Graphgate, trace_id: str) -> dict[str, Any]:
    line = server.process.wait_for_line(
        lambda line: trace_id in line and '"graphgate.access"' in line
    )
    record: dict[str, Any] = json.loads(line)
    return record


def test_an_email_address_as_user_is_served(server: Graphgate, user: str, marker: str) -> None:
    assert ask(sdk(server, user), f"hi {marker}", "alice@example.com") == f"Echo: hi {marker}"


def test_user_alone_keeps_no_history(
    server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    """Stateless like OpenAI: the same end user's two requests are two conversations."""
    client = sdk(server, user)
    for question in (f"one {marker}", f"two {marker}"):
        ask(client, question, "alice")
    prompt = [m["content"] for m in upstream.prompts(marker)[-1]]
    assert prompt == [f"two {marker}"]


def test_one_end_users_sessions_stay_apart(
    server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    first = sdk(server, user, **{"X-Session-Id": "trip"})
    second = sdk(server, user, **{"X-Session-Id": "recipes"})
    ask(first, f"paris {marker}", "alice@example.com")
    ask(second, f"soup {marker}", "alice@example.com")
    ask(first, f"rome {marker}", "alice@example.com")
    prompt = [m["content"] for m in upstream.prompts(marker)[-1]]
    assert prompt == [f"paris {marker}", f"Echo: paris {marker}", f"rome {marker}"]


@pytest.mark.parametrize(
    "end_user", ["alice@example.com", "bob\ninfo fake line\x1b[31m\x00 \u202e", "ü" * 128]
)
def test_the_end_user_is_in_the_access_line_exactly_on_one_line(
    server: Graphgate, user: str, marker: str, end_user: str
) -> None:
    response = httpx.post(
        f"{server.url}/v1/chat/completions",
        json={"messages": [{"role": "user", "content": marker}], "user": end_user},
        headers={"X-User-Id": user},
    )
    assert response.status_code == 200
    record = access_line(server, response.headers["X-Trace-Id"])
    assert record["end_user"] == end_user
    assert record["principal"] == user
    assert record["tokens"] > 0
    assert "session" not in record


def test_a_user_longer_than_openais_128_characters_is_refused_by_name(
    server: Graphgate, user: str
) -> None:
    response = httpx.post(
        f"{server.url}/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "hi"}], "user": "u" * 129},
        headers={"X-User-Id": user},
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "user" in error["message"]
    assert "128" in error["message"]


def test_safety_identifier_names_the_end_user_as_user_does(
    server: Graphgate, user: str, marker: str
) -> None:
    """OpenAI's newer name for the field; an SDK that sends it is served, not refused."""
    response = httpx.post(
        f"{server.url}/v1/chat/completions",
        json={"messages": [{"role": "user", "content": marker}], "safety_identifier": "hash-1"},
        headers={"X-User-Id": user},
    )
    assert response.status_code == 200, response.text
    assert access_line(server, response.headers["X-Trace-Id"])["end_user"] == "hash-1"


def test_an_end_users_usage_is_in_usage(server: Graphgate, user: str, marker: str) -> None:
    """`GET /usage?end_user=` gives one end user's share of the principal's usage."""
    client = sdk(server, user)
    for question, end_user in (
        (f"a1 {marker}", "alice"),
        (f"a2 {marker}", "alice"),
        (f"b {marker}", "b@x.org"),
    ):
        ask(client, question, end_user)
    shares = {}
    for end_user in ("alice", "b@x.org", "carol"):
        response = httpx.get(
            f"{server.url}/usage",
            params={"days": 1, "end_user": end_user},
            headers={"X-User-Id": user},
        )
        assert response.status_code == 200, response.text
        assert response.json()["end_user"] == end_user
        days = response.json()["days"]
        shares[end_user] = days[0]["total"] if days else {}
    assert shares["alice"]["requests"] == 2
    assert shares["b@x.org"]["requests"] == 1
    assert shares["carol"] == {}
    whole = httpx.get(f"{server.url}/usage?days=1", headers={"X-User-Id": user}).json()
    total = whole["days"][0]["total"]
    assert (
        shares["alice"]["total_tokens"] + shares["b@x.org"]["total_tokens"] == total["total_tokens"]
    )
    assert shares["alice"]["total_tokens"] > shares["b@x.org"]["total_tokens"] > 0
