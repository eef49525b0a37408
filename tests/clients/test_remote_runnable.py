"""LangServe's Python client against a running graphgate: invoke, batch, stream, events."""

from __future__ import annotations

import itertools
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk
from langserve import RemoteRunnable

from tests.live_servers import Graphgate, StartGraphgate
from tests.sse import post_stream
from tests.upstream import Upstream


def client(server: Graphgate, user: str) -> RemoteRunnable[Any, Any]:
    return RemoteRunnable(server.chat_url, headers={"X-User-Id": user}, timeout=30)


def test_invoke_returns_the_upstream_reply_as_an_ai_message(
    graphgate_factory: StartGraphgate, user: str, marker: str
) -> None:
    reply = client(graphgate_factory(), user).invoke({"question": f"hello {marker}"})
    assert isinstance(reply, AIMessage)
    assert reply.content == f"Echo: hello {marker}"
    assert reply.response_metadata["model"] == "openai:gpt-primary"
    assert reply.response_metadata["fallback_used"] is False
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["output_tokens"] == 3


def test_batch_of_three_answers_each_in_order(
    graphgate_factory: StartGraphgate, user: str, marker: str
) -> None:
    questions = [{"question": f"q{i} {marker}"} for i in range(3)]
    replies = client(graphgate_factory(), user).batch(questions)
    assert [r.content for r in replies] == [f"Echo: q{i} {marker}" for i in range(3)]


async def test_stream_delivers_tokens_before_the_upstream_has_finished(
    graphgate_factory: StartGraphgate, upstream: Upstream, user: str, marker: str
) -> None:
    upstream.behave(marker, tokens=20, tokens_per_second=20)
    chunks: list[AIMessageChunk] = []
    first_chunk_stats = None
    async for chunk in client(graphgate_factory(), user).astream({"question": marker}):
        if chunk.content and first_chunk_stats is None:
            first_chunk_stats = await upstream.astats(marker)
        chunks.append(chunk)
    text_chunks = [c for c in chunks if c.content]
    assert len(text_chunks) >= 10
    assert "".join(str(c.content) for c in chunks) == " ".join(f"w{i}" for i in range(1, 21))
    assert first_chunk_stats is not None
    assert first_chunk_stats["in_flight"] == 1
    assert first_chunk_stats["completed"] == 0
    assert upstream.stats(marker)["completed"] == 1


async def test_stream_events_carry_chat_model_tokens(
    graphgate_factory: StartGraphgate, user: str, marker: str
) -> None:
    events = [
        event
        async for event in client(graphgate_factory(), user).astream_events(
            {"question": f"events {marker}"}, version="v2"
        )
    ]
    tokens = [e["data"]["chunk"].content for e in events if e["event"] == "on_chat_model_stream"]
    assert "".join(tokens) == f"Echo: events {marker}"


def test_stream_log_grows_the_final_output_token_by_token(
    graphgate_factory: StartGraphgate, upstream: Upstream, user: str, marker: str
) -> None:
    """What the chat playground renders: `/final_output` patched once per token."""
    upstream.behave(marker, tokens=20)
    result = post_stream(
        f"{graphgate_factory().url}/chat/stream_log",
        {"input": {"question": marker, "messages": []}},
        {"X-User-Id": user},
    )
    outputs = [
        op["value"]["content"]
        for data in result.named("data")
        for op in data["ops"]
        if op["path"] == "/final_output" and op.get("value")
    ]
    assert len(outputs) >= 10
    assert outputs[-1] == " ".join(f"w{i}" for i in range(1, 21))
    assert all(len(a) <= len(b) for a, b in itertools.pairwise(outputs))
