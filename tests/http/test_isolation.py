"""One principal never reaches another's sessions, usage or cached answers: knowing the exact
session id gets principal B a 404 (never a 403 that would confirm the session exists)."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import ApiKey, create_key
from tests.live_servers import Graphgate, StartGraphgate
from tests.upstream import Upstream


@pytest.fixture
def isolated_server(graphgate_factory: StartGraphgate, mode: str, keys_file: Path) -> Graphgate:
    return graphgate_factory(
        mode, AUTH_MODE="api_key", API_KEYS_FILE=str(keys_file), CACHE_MODE="exact"
    )


@pytest.fixture
def alice(keys_file: Path) -> ApiKey:
    return create_key(f"alice-{uuid.uuid4().hex[:8]}", "--file", str(keys_file))


@pytest.fixture
def bob(keys_file: Path) -> ApiKey:
    return create_key(f"bob-{uuid.uuid4().hex[:8]}", "--file", str(keys_file))


def turn(server: Graphgate, key: ApiKey, question: str, session: str | None) -> httpx.Response:
    body: dict[str, object] = {"input": {"question": question}}
    if session:
        body["config"] = {"configurable": {"session_id": session}}
    return httpx.post(f"{server.url}/chat/invoke", json=body, headers=key.headers, timeout=30)


def history(server: Graphgate, key: ApiKey, session: str) -> httpx.Response:
    return httpx.get(f"{server.url}/chat/sessions/{session}", headers=key.headers)


def test_b_cannot_read_continue_or_delete_as_session_by_its_exact_id(
    isolated_server: Graphgate, upstream: Upstream, alice: ApiKey, bob: ApiKey, marker: str
) -> None:
    session = f"shared-name-{marker}"
    assert turn(isolated_server, alice, f"alice secret {marker}", session).status_code == 200
    before = history(isolated_server, alice, session).json()["messages"]

    read = history(isolated_server, bob, session)
    assert read.status_code == 404
    assert read.json()["error"]["code"] == "not_found"
    deleted = httpx.delete(f"{isolated_server.url}/chat/sessions/{session}", headers=bob.headers)
    assert deleted.status_code == 404
    # Continuing "the" session starts bob's own, by that name: alice's turns are not in it.
    assert turn(isolated_server, bob, f"bob asks {marker}", session).status_code == 200
    bob_prompt = upstream.prompts(f"bob asks {marker}")[-1]
    assert [m["content"] for m in bob_prompt] == [f"bob asks {marker}"]

    assert history(isolated_server, alice, session).json()["messages"] == before
    assert len(history(isolated_server, bob, session).json()["messages"]) == 2


def test_b_usage_holds_nothing_of_as(
    isolated_server: Graphgate, alice: ApiKey, bob: ApiKey, marker: str
) -> None:
    for index in range(3):
        turn(isolated_server, alice, f"alice {index} {marker}", None)
    alice_usage = httpx.get(f"{isolated_server.url}/usage", headers=alice.headers).json()
    assert alice_usage["days"][0]["total"]["requests"] == 3
    bob_usage = httpx.get(f"{isolated_server.url}/usage", headers=bob.headers).json()
    assert bob_usage == {"principal": bob.principal, "days": []}


def test_an_answer_cached_for_a_never_reaches_b(
    isolated_server: Graphgate, upstream: Upstream, alice: ApiKey, bob: ApiKey, marker: str
) -> None:
    question = f"cache me {marker}"
    first = turn(isolated_server, alice, question, None).json()["output"]
    again = turn(isolated_server, alice, question, None).json()["output"]
    assert first["response_metadata"]["cache_hit"] is False
    assert again["response_metadata"]["cache_hit"] is True
    bobs = turn(isolated_server, bob, question, None).json()["output"]
    assert bobs["response_metadata"]["cache_hit"] is False
    assert upstream.stats(question)["requests"] == 2
