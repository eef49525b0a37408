"""The semantic cache with real embeddings (the packaged all-MiniLM-L6-v2): a paraphrase is a
hit, a different question a miss, and a principal never gets another's entry."""

from __future__ import annotations

from typing import Any

import pytest
from langserve import RemoteRunnable

from tests.live_servers import Graphgate, StartGraphgate
from tests.upstream import Upstream


@pytest.fixture
def semantic_server(graphgate_factory: StartGraphgate, mode: str) -> Graphgate:
    return graphgate_factory(
        mode, CACHE_MODE="semantic", EMBEDDINGS_MODEL="local:all-MiniLM-L6-v2", HF_HUB_OFFLINE="1"
    )


def ask(server: Graphgate, user: str, question: str) -> Any:
    client: RemoteRunnable[Any, Any] = RemoteRunnable(
        server.chat_url, headers={"X-User-Id": user}, timeout=60
    )
    return client.invoke({"question": question})


def test_a_paraphrase_is_a_hit_and_another_question_a_miss(
    semantic_server: Graphgate, upstream: Upstream, user: str
) -> None:
    first = ask(semantic_server, user, "What is a vector database?")
    paraphrase = ask(semantic_server, user, "what's a vector database")
    other = ask(semantic_server, user, "How do I bake bread?")
    assert first.response_metadata["cache_hit"] is False
    assert paraphrase.response_metadata["cache_hit"] is True
    assert paraphrase.content == first.content
    assert other.response_metadata["cache_hit"] is False
    assert other.content == "Echo: How do I bake bread?"


def test_one_principal_never_gets_another_principals_entry(
    semantic_server: Graphgate, user: str
) -> None:
    ask(semantic_server, user, "What is a vector database?")
    # RediSearch tags match case-insensitively: `USER-...` must still be someone else.
    for other in (f"{user}-b", user.upper()):
        theirs = ask(semantic_server, other, "What is a vector database?")
        assert theirs.response_metadata["cache_hit"] is False
