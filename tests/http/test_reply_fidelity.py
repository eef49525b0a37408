"""What a client gets is the model's answer to what it sent: a cached answer only for the same
conversation (tool calls and every content part included), byte for byte, with its finish
reason; non-text parts refused the same way on every API; and the reply's usage the turn's
billed usage, whatever the chain did."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage, AIMessageChunk
from langserve import RemoteRunnable

from tests.clients.test_openai_compat import sdk
from tests.live_servers import Graphgate, StartGraphgate
from tests.upstream import Upstream

IMAGE = "data:image/png;base64," + "iVBORw0KGgo" * 40


@pytest.fixture
def cached_server(graphgate_factory: StartGraphgate, mode: str) -> Graphgate:
    return graphgate_factory(mode, CACHE_MODE="exact", CACHE_SCOPE="global")


def chat(server: Graphgate, user: str, path: str = "/chat") -> Any:
    return RemoteRunnable(f"{server.url}{path}/", headers={"X-User-Id": user}, timeout=30)


def tool_conversation(call_id: str, name: str, marker: str) -> list[dict[str, Any]]:
    call = {"id": call_id, "type": "function", "function": {"name": name, "arguments": "{}"}}
    return [
        {"role": "user", "content": f"look {marker}"},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call_id, "content": "found"},
        {"role": "user", "content": f"and so? {marker}"},
    ]


def test_earlier_tool_calls_are_part_of_the_cached_prompt(
    cached_server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    client = sdk(cached_server, user)
    for call_id, name in (("call_a", "weather"), ("call_b", "stocks"), ("call_a", "stocks")):
        client.chat.completions.create(
            model="graphgate",
            messages=tool_conversation(call_id, name, marker),  # type: ignore[arg-type]
        )
    assert upstream.stats(marker)["requests"] == 3
    client.chat.completions.create(
        model="graphgate",
        messages=tool_conversation("call_b", "stocks", marker),  # type: ignore[arg-type]
    )
    assert upstream.stats(marker)["requests"] == 3


def test_an_image_part_is_refused_on_langserve_as_on_v1(
    server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    parts = [
        {"type": "text", "text": f"what is this? {marker}"},
        {"type": "image_url", "image_url": {"url": IMAGE}},
    ]
    langserve = httpx.post(
        f"{server.url}/chat/invoke",
        json={"input": {"messages": [{"type": "human", "content": parts}]}},
        headers={"X-User-Id": user},
    )
    v1 = httpx.post(
        f"{server.url}/v1/chat/completions",
        json={"model": "graphgate", "messages": [{"role": "user", "content": parts}]},
        headers={"X-User-Id": user},
    )
    for response in (langserve, v1):
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "unsupported_parameter"
        assert "`image_url` part" in response.json()["error"]["message"]
    assert upstream.stats(marker)["requests"] == 0


@pytest.mark.parametrize("reason", ["length", "content_filter"])
def test_a_cached_reply_keeps_its_finish_reason(
    cached_server: Graphgate, upstream: Upstream, user: str, marker: str, reason: str
) -> None:
    if reason == "content_filter":
        upstream.behave(marker, reply="I cannot say", finish_reason="content_filter")
    else:
        upstream.behave(marker, tokens=30)
    client = sdk(cached_server, user)
    question: Any = [{"role": "user", "content": f"finish {reason} {marker}"}]
    reasons = [
        client.chat.completions.create(model="graphgate", messages=question, max_tokens=10)
        .choices[0]
        .finish_reason
        for _ in range(2)
    ]
    assert upstream.stats(marker)["requests"] == 1
    assert reasons == [reason, reason]
    streamed = client.chat.completions.create(
        model="graphgate", messages=question, max_tokens=10, stream=True
    )
    assert [c.choices[0].finish_reason for c in streamed if c.choices][-1] == reason
    reply = chat(cached_server, user).invoke(
        {"question": f"finish {reason} {marker}"}, {"configurable": {"max_tokens": 10}}
    )
    assert reply.response_metadata["finish_reason"] == reason


def test_a_cached_reply_is_byte_identical(
    cached_server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    text_pieces = ["  Two", " spaces", " before,", " one\tafter ", "\n"]
    upstream.behave(marker, chunks=text_pieces)
    question = {"question": f"whitespace {marker}"}
    fresh = chat(cached_server, user).invoke(question)
    cached = chat(cached_server, user).invoke(question)
    streamed = "".join(str(c.content) for c in chat(cached_server, user).stream(question))
    assert upstream.stats(marker)["requests"] == 1
    assert cached.response_metadata["cache_hit"] is True
    assert fresh.content == cached.content == streamed == "".join(text_pieces)


@pytest.fixture
def two_call_server(
    graphgate_factory: StartGraphgate, mode: str, tmp_path_factory: pytest.TempPathFactory
) -> Graphgate:
    routes: Path = tmp_path_factory.mktemp("routes") / "routes.toml"
    routes.write_text(
        '[routes.chat]\npath = "/chat"\nchain = "tests.chains.two_calls:make_chain"\n'
    )
    return graphgate_factory(mode, ROUTES_FILE=str(routes))


def billed(upstream: Upstream, marker: str) -> int:
    return sum(usage["total_tokens"] for usage in upstream.stats(marker)["usage"])


def test_a_multi_call_chains_usage_metadata_is_the_turns_billed_usage(
    two_call_server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    invoked = chat(two_call_server, user).invoke({"question": f"invoke {marker}"})
    assert isinstance(invoked, AIMessage)
    assert invoked.usage_metadata is not None
    assert invoked.usage_metadata["total_tokens"] == billed(upstream, f"invoke {marker}")
    assert invoked.response_metadata["model_calls"] == 2

    batched = chat(two_call_server, user).batch([{"question": f"batch {marker}"}])[0]
    assert batched.usage_metadata["total_tokens"] == billed(upstream, f"batch {marker}")

    chunks = list(chat(two_call_server, user).stream({"question": f"stream {marker}"}))
    streamed = chunks[0]
    for chunk in chunks[1:]:
        streamed += chunk
    assert isinstance(streamed, AIMessageChunk)
    assert streamed.usage_metadata is not None
    assert streamed.usage_metadata["total_tokens"] == billed(upstream, f"stream {marker}")

    v1 = sdk(two_call_server, user).chat.completions.create(
        model="graphgate", messages=[{"role": "user", "content": f"v1 {marker}"}]
    )
    assert v1.usage is not None
    assert v1.usage.total_tokens == billed(upstream, f"v1 {marker}")


def test_a_graph_routes_streamed_usage_adds_up_to_the_billed_usage(
    graphgate_factory: StartGraphgate,
    upstream: Upstream,
    user: str,
    marker: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    routes = tmp_path_factory.mktemp("routes") / "routes.toml"
    routes.write_text(
        '[routes.graph]\npath = "/graph"\nchain = "tests.chains.graph_route:make_graph"\n'
    )
    server = graphgate_factory("embedded", ROUTES_FILE=str(routes))
    chunks = list(chat(server, user, "/graph").stream({"question": f"graph stream {marker}"}))
    streamed = chunks[0]
    for chunk in chunks[1:]:
        streamed += chunk
    assert streamed.usage_metadata is not None
    assert streamed.usage_metadata["total_tokens"] == billed(upstream, f"graph stream {marker}")
