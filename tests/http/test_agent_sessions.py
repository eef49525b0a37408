"""Agent sessions: a client that runs the model's tool calls keeps a valid history however long
its turn gets (through `/v1` with a session and through a LangServe route), a client's system
message stays in its session, and an empty tool result is a result."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from langserve import RemoteRunnable

from tests.clients.test_openai_compat import sdk
from tests.live_servers import Graphgate, StartGraphgate, route_file
from tests.upstream import Upstream

STEPS, PARALLEL = 30, 5
TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "Look an item up.",
            "parameters": {"type": "object", "properties": {"item": {"type": "string"}}},
        },
    }
]


@pytest.fixture
def agent_server(
    graphgate_factory: StartGraphgate, mode: str, tmp_path_factory: pytest.TempPathFactory
) -> Graphgate:
    routes = route_file(
        tmp_path_factory.mktemp("routes"),
        '[routes.agent]\npath = "/agent"\nchain = "tests.chains.tool_agent:make_chain"\n',
    )
    return graphgate_factory(mode, ROUTES_FILE=routes)


def assert_valid_conversation(messages: list[dict[str, Any]]) -> None:
    """What OpenAI and Anthropic accept: system messages first, then a user message, and every
    tool message answers a call of the assistant message just before it, every call answered
    before anything else is said."""
    roles = [m["role"] for m in messages]
    systems = len(roles) - len(roles[roles.index("user") :]) if "user" in roles else len(roles)
    assert all(role == "system" for role in roles[:systems]), roles
    assert roles[systems] == "user", roles
    pending: set[str] = set()
    for message in messages[systems:]:
        if message["role"] == "tool":
            assert message["tool_call_id"] in pending, (message, roles)
            pending.discard(message["tool_call_id"])
            continue
        assert not pending, f"calls {pending} unanswered before a {message['role']} message"
        assert message["role"] != "system", roles
        calls = message.get("tool_calls") or [] if message["role"] == "assistant" else []
        pending = {call["id"] for call in calls}


def five_calls(step: int) -> list[dict[str, Any]]:
    return [{"name": "lookup", "arguments": {"item": f"s{step}-{i}"}} for i in range(PARALLEL)]


def run_agent_turn(
    upstream: Upstream, marker: str, send: Callable[[list[dict[str, Any]] | None], list[Any]]
) -> None:
    """STEPS steps of PARALLEL calls, then an answer; `send(None)` asks the question,
    `send(results)` sends one step's tool results and returns the next calls."""
    upstream.behave(marker, tool_calls=five_calls(0))
    upstream.behave(f"final-{marker}", reply="all done")
    calls = send(None)
    for step in range(STEPS):
        assert len(calls) == PARALLEL, f"step {step}: {calls}"
        last = step == STEPS - 1
        results = [
            {"id": call_id, "content": f"{'final-' if last else ''}{marker} r{step}.{i}"}
            for i, call_id in enumerate(calls)
        ]
        calls = send(results)
    assert calls == []
    prompts = upstream.sent_messages(marker)
    assert len(prompts) == STEPS + 1
    for prompt in prompts:
        assert_valid_conversation(prompt)
        assert prompt[1]["content"] == f"plan {marker}", "the turn's question was dropped"


def test_a_long_agent_turn_through_v1_keeps_a_valid_history(
    agent_server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    session = f"agent-{marker}"
    client = sdk(agent_server, user, **{"X-Session-Id": session})

    def send(results: list[dict[str, Any]] | None) -> list[Any]:
        if results is None:
            messages: list[Any] = [{"role": "user", "content": f"plan {marker}"}]
        else:
            messages = [
                {"role": "tool", "tool_call_id": r["id"], "content": r["content"]} for r in results
            ]
        reply = client.chat.completions.create(model="graphgate", messages=messages, tools=TOOLS)
        return [call.id for call in reply.choices[0].message.tool_calls or []]

    run_agent_turn(upstream, marker, send)
    stored = httpx.get(f"{agent_server.url}/chat/sessions/{session}", headers={"X-User-Id": user})
    messages = stored.json()["messages"]
    assert messages[0]["content"] == f"plan {marker}"
    assert messages[-1]["content"] == "all done"
    assert len(messages) <= 40


def test_a_long_agent_turn_through_a_langserve_route_keeps_a_valid_history(
    agent_server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    session = f"agent-{marker}"
    agent: Any = RemoteRunnable(
        f"{agent_server.url}/agent/", headers={"X-User-Id": user}, timeout=30
    ).with_config(configurable={"session_id": session})

    def send(results: list[dict[str, Any]] | None) -> list[Any]:
        if results is None:
            reply = agent.invoke({"question": f"plan {marker}"})
        else:
            tool_messages = [ToolMessage(r["content"], tool_call_id=r["id"]) for r in results]
            reply = agent.invoke({"messages": tool_messages})
        assert isinstance(reply, AIMessage)
        return [call["id"] for call in reply.tool_calls]

    run_agent_turn(upstream, marker, send)
    stored = httpx.get(f"{agent_server.url}/agent/sessions/{session}", headers={"X-User-Id": user})
    messages = stored.json()["messages"]
    assert messages[0]["content"] == f"plan {marker}"
    assert messages[-1]["content"] == "all done"


def test_a_clients_system_message_stays_in_its_v1_session(
    server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    client = sdk(server, user, **{"X-Session-Id": f"sys-{marker}"})
    system: Any = {"role": "system", "content": f"Answer in French {marker}"}
    client.chat.completions.create(
        model="graphgate", messages=[system, {"role": "user", "content": f"one {marker}"}]
    )
    for turn in ("two", "three"):
        client.chat.completions.create(
            model="graphgate", messages=[{"role": "user", "content": f"{turn} {marker}"}]
        )
    for prompt in upstream.prompts(marker):
        assert prompt[0] == system


def test_a_clients_system_message_stays_in_its_langserve_session(
    server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    chat: Any = RemoteRunnable(
        server.chat_url, headers={"X-User-Id": user}, timeout=30
    ).with_config(configurable={"session_id": f"sys-{marker}"})
    system = SystemMessage(f"Answer in French {marker}")
    chat.invoke({"messages": [system, HumanMessage(f"one {marker}")]})
    for turn in range(45):  # past MAX_HISTORY_MESSAGES: the oldest turns go, the system stays
        chat.invoke({"question": f"turn {turn} {marker}"})
    prompts = upstream.prompts(marker)
    assert len(prompts) == 46
    for prompt in prompts:
        assert prompt[0] == {"role": "system", "content": f"Answer in French {marker}"}
        assert_valid_conversation(prompt)
    stored = httpx.get(f"{server.url}/chat/sessions/sys-{marker}", headers={"X-User-Id": user})
    messages = stored.json()["messages"]
    assert messages[0]["type"] == "system"
    assert len(messages) <= 40


def test_an_empty_tool_result_continues_a_v1_session(
    server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    client = sdk(server, user, **{"X-Session-Id": f"empty-{marker}"})
    upstream.behave(marker, tool_calls=[{"name": "lookup", "arguments": {"item": "x"}}])
    question: Any = {"role": "user", "content": f"look {marker}"}
    call = client.chat.completions.create(model="graphgate", messages=[question], tools=TOOLS)
    tool_calls = call.choices[0].message.tool_calls or []
    assert len(tool_calls) == 1
    upstream.behave(tool_calls[0].id, reply="thanks")
    answer = client.chat.completions.create(
        model="graphgate",
        messages=[{"role": "tool", "tool_call_id": tool_calls[0].id, "content": ""}],
        tools=TOOLS,
    )
    assert answer.choices[0].message.content == "thanks"
    assert_valid_conversation(upstream.sent_messages(tool_calls[0].id)[-1])


def test_a_question_after_an_unanswered_tool_call_drops_the_call(
    server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    session = f"dangling-{marker}"
    client = sdk(server, user, **{"X-Session-Id": session})
    upstream.behave(f"look {marker}", tool_calls=[{"name": "lookup", "arguments": {"item": "x"}}])
    question: Any = {"role": "user", "content": f"look {marker}"}
    client.chat.completions.create(model="graphgate", messages=[question], tools=TOOLS)
    client.chat.completions.create(
        model="graphgate", messages=[{"role": "user", "content": f"never mind {marker}"}]
    )
    assert_valid_conversation(upstream.sent_messages(f"never mind {marker}")[-1])
    stored = httpx.get(f"{server.url}/chat/sessions/{session}", headers={"X-User-Id": user})
    assert not any(m.get("tool_calls") for m in stored.json()["messages"])
