"""`/v1` as the openai SDK and langchain-openai's `ChatOpenAI` use it: generation parameters
reach the upstream, what graphgate cannot honour is refused by name, tools and structured output
go through (plain and streamed), and a tool's result continues a session."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from tests.clients.test_openai_compat import sdk
from tests.conftest import PRIMARY_MODEL
from tests.live_servers import Graphgate, StartGraphgate
from tests.upstream import Upstream


def chat_openai(server: Graphgate, user: str, **headers: str) -> ChatOpenAI:
    return ChatOpenAI(
        model="graphgate",
        base_url=f"{server.url}/v1",
        api_key="unused",
        max_retries=0,
        default_headers={"X-User-Id": user, **headers},
    )


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


class Person(BaseModel):
    name: str
    age: int


def upstream_body(upstream: Upstream, marker: str) -> dict[str, Any]:
    body: dict[str, Any] = upstream.stats(marker)["bodies"][-1]
    return body


def test_temperature_max_tokens_and_stop_reach_the_upstream(
    server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    sdk(server, user).chat.completions.create(
        model="graphgate",
        messages=[{"role": "user", "content": f"params {marker}"}],
        temperature=0.3,
        max_tokens=7,
        stop=["END"],
        seed=11,
    )
    body = upstream_body(upstream, marker)
    assert body["temperature"] == 0.3
    assert (body.get("max_completion_tokens") or body.get("max_tokens")) == 7
    assert body["stop"] == ["END"]
    assert body["seed"] == 11


def test_chat_openais_parameters_reach_the_upstream(
    server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    model = ChatOpenAI(
        model="graphgate",
        base_url=f"{server.url}/v1",
        api_key="unused",
        max_retries=0,
        default_headers={"X-User-Id": user},
        temperature=0.7,
        max_tokens=9,
        stop_sequences=["STOP"],
    )
    model.invoke(f"params {marker}")
    body = upstream_body(upstream, marker)
    assert body["temperature"] == 0.7
    assert (body.get("max_completion_tokens") or body.get("max_tokens")) == 9
    assert body["stop"] == ["STOP"]


def test_max_tokens_cuts_the_reply_and_says_length(
    server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    upstream.behave(marker, tokens=20)
    completion = sdk(server, user).chat.completions.create(
        model="graphgate", messages=[{"role": "user", "content": marker}], max_tokens=5
    )
    assert completion.choices[0].message.content == "w1 w2 w3 w4 w5"
    assert completion.choices[0].finish_reason == "length"


@pytest.mark.parametrize(
    ("field", "value"),
    [("n", 2), ("logprobs", True), ("audio", {"voice": "alloy", "format": "wav"}), ("top_k", 5)],
)
def test_what_cannot_be_honoured_is_a_400_naming_the_field(
    server: Graphgate, user: str, field: str, value: Any
) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        sdk(server, user).chat.completions.create(
            model="graphgate",
            messages=[{"role": "user", "content": "hi"}],
            extra_body={field: value},
        )
    assert refused.value.code == "unsupported_parameter"
    assert refused.value.param == field
    assert f"`{field}`" in refused.value.message


def test_max_tokens_above_the_server_maximum_is_a_400(server: Graphgate, user: str) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        sdk(server, user).chat.completions.create(
            model="graphgate", messages=[{"role": "user", "content": "hi"}], max_tokens=10**6
        )
    assert refused.value.code == "invalid_input"
    assert "MAX_OUTPUT_TOKENS" in refused.value.message


def test_a_tool_call_reaches_chat_openai(
    server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    upstream.behave(marker, tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}])
    model = chat_openai(server, user).bind_tools([get_weather])
    reply = model.invoke(f"weather please {marker}")
    assert [(call["name"], call["args"]) for call in reply.tool_calls] == [
        ("get_weather", {"city": "Oslo"})
    ]
    sent = upstream_body(upstream, marker)
    assert [t["function"]["name"] for t in sent["tools"]] == ["get_weather"]


def test_a_streamed_tool_call_arrives_as_deltas(
    server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    upstream.behave(marker, tool_calls=[{"name": "get_weather", "arguments": {"city": "Rome"}}])
    model = chat_openai(server, user).bind_tools([get_weather])
    chunks = [c for c in model.stream(f"weather please {marker}") if isinstance(c, AIMessageChunk)]
    assert sum(1 for chunk in chunks if chunk.tool_call_chunks) >= 2
    whole = chunks[0]
    for chunk in chunks[1:]:
        whole = whole + chunk
    assert [(call["name"], call["args"]) for call in whole.tool_calls] == [
        ("get_weather", {"city": "Rome"})
    ]


def test_a_tool_result_continues_the_session_and_is_in_its_history(
    server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    upstream.behave(marker, tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}])
    upstream.behave(f"{marker}-result", reply="It is sunny in Oslo.")
    session = f"tools-{marker}"
    model = chat_openai(server, user, **{"X-Session-Id": session}).bind_tools([get_weather])
    call = model.invoke(f"weather please {marker}").tool_calls[0]
    result = ToolMessage(content=f"sunny {marker}-result", tool_call_id=call["id"])
    answer = model.invoke([result])  # the session holds the question and the call
    assert answer.content == "It is sunny in Oslo."
    follow_up = upstream.prompts(f"{marker}-result")[-1]
    assert [m["role"] for m in follow_up] == ["user", "assistant", "tool"]
    assert follow_up[1]["tool_calls"][0]["id"] == call["id"]
    history = httpx.get(
        f"{server.url}/chat/sessions/{session}", headers={"X-User-Id": user}
    ).json()["messages"]
    assert [m["type"] for m in history] == ["human", "ai", "tool", "ai"]
    assert history[1]["tool_calls"][0]["name"] == "get_weather"
    assert history[2]["tool_call_id"] == call["id"]


def test_structured_output_with_a_json_schema_is_parsed(
    server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    upstream.behave(marker, reply=json.dumps({"name": "Ada", "age": 36}))
    model = chat_openai(server, user).with_structured_output(Person, method="json_schema")
    person = model.invoke([HumanMessage(f"who {marker}")])
    assert person == Person(name="Ada", age=36)
    assert upstream_body(upstream, marker)["response_format"]["type"] == "json_schema"


def test_openai_streams_tell_proxies_not_to_buffer(server: Graphgate, user: str) -> None:
    body = {"model": "graphgate", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    with httpx.stream(
        "POST", f"{server.url}/v1/chat/completions", json=body, headers={"X-User-Id": user}
    ) as response:
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"
        response.read()


def test_a_stateless_tool_conversation_is_accepted(
    server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    """The whole conversation, as a stateless client sends it: call and result included."""
    call = {"name": "get_weather", "args": {"city": "Oslo"}, "id": "call_1", "type": "tool_call"}
    reply = chat_openai(server, user).invoke(
        [
            HumanMessage(f"weather {marker}"),
            AIMessage(content="", tool_calls=[call]),
            ToolMessage(content="sunny", tool_call_id="call_1"),
        ]
    )
    assert reply.content == "Echo: sunny"
    assert [m["role"] for m in upstream.prompts(marker)[-1]] == ["user", "assistant", "tool"]


def test_a_request_the_model_refuses_is_a_400_without_fallback(
    server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    upstream.behave(marker, model=PRIMARY_MODEL, statuses=[400])
    with pytest.raises(openai.BadRequestError) as refused:
        sdk(server, user).chat.completions.create(
            model="graphgate", messages=[{"role": "user", "content": f"bad {marker}"}]
        )
    assert refused.value.code == "invalid_input"
    assert f"openai:{PRIMARY_MODEL} refused the request" in refused.value.message
    assert [body["model"] for body in upstream.stats(marker)["bodies"]] == [PRIMARY_MODEL]


@pytest.mark.parametrize("stream", [False, True])
def test_tools_for_the_demo_model_are_refused_before_any_stream(
    graphgate_factory: StartGraphgate, user: str, stream: bool
) -> None:
    demo = graphgate_factory("embedded", OPENAI_BASE_URL="")
    body = {
        "model": "graphgate",
        "stream": stream,
        "messages": [{"role": "user", "content": "weather?"}],
        "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}],
    }
    response = httpx.post(f"{demo.url}/v1/chat/completions", json=body, headers={"X-User-Id": user})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "tools"
