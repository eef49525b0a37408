"""OpenTelemetry traces of real turns, exported by graphgate's SDK set-up over OTLP to a real
receiver on loopback (HTTP and gRPC, decoded with the OpenTelemetry protobuf definitions): the
span tree of an invoke turn whose primary model fails after its retries and whose fallback
answers, of a streamed turn, and of a LangGraph API run with a tool call. Each continues the
client's `traceparent`, names the same trace id as the logs, carries the GenAI conventions'
attributes, and holds no prompt or reply text."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import FALLBACK_MODEL, PRIMARY_MODEL
from tests.example_agent import agent_behaves, agent_routes, ask
from tests.live_servers import Graphgate, StartGraphgate
from tests.otlp_receiver import Received, ReceivedSpan, otlp_grpc_receiver, otlp_http_receiver
from tests.upstream import Upstream

# Spans leave in batches of at most 100 ms, metrics every half second: the test waits on
# what arrives, these only make it arrive soon.
EXPORT_SOON = {"OTEL_BSP_SCHEDULE_DELAY": "100", "OTEL_METRIC_EXPORT_INTERVAL": "500"}
CHAT_NODES = ["guard", "limit", "llm", "persist"]


def traceparent() -> tuple[str, str, str]:
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{parent_id}-01", trace_id, parent_id


class Tree:
    """One trace's spans, by name and by parent."""

    def __init__(self, spans: list[ReceivedSpan]) -> None:
        self.spans = spans

    def one(self, name: str) -> ReceivedSpan:
        found = [span for span in self.spans if span.name == name]
        assert len(found) == 1, (name, [span.name for span in self.spans])
        return found[0]

    def __repr__(self) -> str:
        names = {span.span_id: span.name for span in self.spans}
        return repr([(span.name, names.get(span.parent_id)) for span in self.spans])

    def children(self, parent: ReceivedSpan) -> list[str]:
        return [span.name for span in self.spans if span.parent_id == parent.span_id]

    def server(self) -> ReceivedSpan:
        return next(span for span in self.spans if span.kind == "SERVER")


def complete(trace_id: str, *names: str) -> Any:
    """Ready once the trace holds its server span and spans of each of `names`."""

    def ready(received: Received) -> bool:
        got = {span.name for span in received.trace(trace_id)}
        kinds = {span.kind for span in received.trace(trace_id)}
        return "SERVER" in kinds and set(names) <= got

    return ready


def assert_no_text(tree: Tree, *texts: str) -> None:
    """No span carries any of `texts` (a prompt, a reply) in a name, attribute or event."""
    for span in tree.spans:
        for carried in span.texts():
            assert not any(text in carried for text in texts), (span.name, carried)


@pytest.fixture(scope="module")
def http_receiver() -> Iterator[tuple[str, Received]]:
    with otlp_http_receiver() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def traced(
    graphgate_factory: StartGraphgate,
    http_receiver: tuple[str, Received],
    tmp_path_factory: pytest.TempPathFactory,
) -> Graphgate:
    endpoint, _ = http_receiver
    return graphgate_factory(
        "redis",
        OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
        ROUTES_FILE=agent_routes(tmp_path_factory.mktemp("routes")),
        **EXPORT_SOON,
    )


def test_an_invoke_turn_with_retries_and_a_fallback_is_one_trace(
    traced: Graphgate, http_receiver: tuple[str, Received], upstream: Upstream, marker: str
) -> None:
    _, received = http_receiver
    upstream.behave(marker, model=PRIMARY_MODEL, statuses=[500] * 10)
    upstream.behave(marker, model=FALLBACK_MODEL, reply=f"the fallback's words {marker}-reply")
    header, trace_id, parent_id = traceparent()
    user = f"u-{uuid.uuid4().hex[:8]}"
    body = {
        "input": {"question": f"secret question {marker}"},
        "config": {"configurable": {"session_id": "s"}},
    }
    headers = {"traceparent": header, "X-User-Id": user}
    answer = httpx.post(f"{traced.url}/chat/invoke", json=body, headers=headers, timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-Trace-Id"] == trace_id  # the logs' id is the trace's

    primary, fallback = f"chat {PRIMARY_MODEL}", f"chat {FALLBACK_MODEL}"
    received.wait_for(complete(trace_id, primary, fallback, "checkpoint write", "persist"))
    tree = Tree(received.trace(trace_id))
    server = tree.server()
    assert server.parent_id == parent_id  # the client's span is its parent
    assert server.attributes["http.route"] == "/chat/invoke"
    assert server.attributes.get("user.id") == user, server.attributes
    assert server.service == "graphgate"
    assert {"admission", "invoke_workflow chat", "turn end"} <= set(tree.children(server)), tree
    assert tree.children(tree.one("admission")) == ["checkpoint read"]
    assert tree.children(tree.one("turn end")) == ["checkpoint write"]
    workflow = tree.one("invoke_workflow chat")
    assert workflow.attributes["gen_ai.operation.name"] == "invoke_workflow"
    assert workflow.attributes["gen_ai.agent.name"] == "chat"
    assert sorted(tree.children(workflow)) == sorted(CHAT_NODES)
    llm = tree.one("llm")
    assert tree.children(llm) == [primary, fallback]

    failed = tree.one(primary)
    assert failed.kind == "CLIENT"
    assert failed.error
    assert failed.attributes["gen_ai.operation.name"] == "chat"
    assert failed.attributes["gen_ai.provider.name"] == "openai"
    assert failed.attributes["gen_ai.request.model"] == PRIMARY_MODEL
    retries = [attrs["graphgate.attempt"] for name, attrs in failed.events if name == "retry"]
    assert retries == [2, 3]  # LLM_MAX_RETRIES=2: the second and third attempts
    answered = tree.one(fallback)
    assert not answered.error
    assert answered.events == [("fallback", {"graphgate.fallback_from": f"openai:{PRIMARY_MODEL}"})]
    assert answered.attributes["gen_ai.response.model"] == FALLBACK_MODEL
    assert answered.attributes["gen_ai.usage.input_tokens"] > 0
    assert answered.attributes["gen_ai.usage.output_tokens"] > 0
    assert_no_text(tree, "secret question", f"{marker}-reply")
    received.wait_for(
        lambda r: {"gen_ai.client.token.usage", "http.server.request.duration"} <= r.metric_names
    )


def test_a_streamed_turn_is_one_trace(
    traced: Graphgate, http_receiver: tuple[str, Received], upstream: Upstream, marker: str
) -> None:
    _, received = http_receiver
    upstream.behave(marker, tokens=8)
    header, trace_id, _ = traceparent()
    body = {
        "input": {"question": f"stream this {marker}"},
        "config": {"configurable": {"session_id": "s"}},
    }
    headers = {"traceparent": header, "X-User-Id": f"u-{uuid.uuid4().hex[:8]}"}
    with httpx.stream(
        "POST", f"{traced.url}/chat/stream", json=body, headers=headers, timeout=60
    ) as stream:
        assert stream.status_code == 200
        assert "event: end" in stream.read().decode()
    model = f"chat {PRIMARY_MODEL}"
    received.wait_for(complete(trace_id, model, "checkpoint write", "persist"))
    tree = Tree(received.trace(trace_id))
    assert tree.server().attributes["http.route"] == "/chat/stream"
    assert tree.children(tree.one("llm")) == [model]
    assert tree.one(model).attributes["gen_ai.usage.output_tokens"] == 8
    assert tree.children(tree.one("turn end")) == ["checkpoint write"]
    assert_no_text(tree, "stream this")


def test_a_langgraph_api_run_with_a_tool_call_is_one_trace(
    traced: Graphgate, http_receiver: tuple[str, Received], upstream: Upstream, marker: str
) -> None:
    _, received = http_receiver
    agent_behaves(upstream, marker)
    header, trace_id, _ = traceparent()
    headers = {"traceparent": header, "X-User-Id": f"u-{uuid.uuid4().hex[:8]}"}
    run = {"assistant_id": "agent", "input": ask(marker)}
    thread = httpx.post(f"{traced.url}/threads", json={}, headers=headers).json()["thread_id"]
    header, trace_id, _ = traceparent()
    headers["traceparent"] = header
    answer = httpx.post(
        f"{traced.url}/threads/{thread}/runs/wait", json=run, headers=headers, timeout=60
    )
    assert answer.status_code == 200, answer.text
    received.wait_for(complete(trace_id, "execute_tool search_docs", "tools"))
    tree = Tree(received.trace(trace_id))
    workflow = tree.one("invoke_workflow agent")
    assert workflow.attributes["gen_ai.agent.name"] == "agent"
    nodes = tree.children(workflow)
    assert nodes.count("agent") == 2  # asks for the tool, then answers
    assert nodes.count("tools") == 1
    tool = tree.one("execute_tool search_docs")
    assert tool.attributes == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "search_docs",
    }
    assert tree.children(tree.one("tools")) == ["execute_tool search_docs"]
    agents = [span for span in tree.spans if span.name == "agent"]
    assert [tree.children(node) for node in agents] == [[f"chat {PRIMARY_MODEL}"]] * 2
    # The run writes its thread's checkpoint at each step, each a span of its own.
    assert any(span.name == "checkpoint write" for span in tree.spans)
    assert_no_text(tree, "When may I retry?")


def test_otlp_over_grpc_carries_the_same_trace_and_text_only_when_asked(
    graphgate_factory: StartGraphgate, upstream: Upstream, marker: str
) -> None:
    with otlp_grpc_receiver() as (endpoint, received):
        server = graphgate_factory(
            "embedded",
            fresh=True,
            OTEL_EXPORTER_OTLP_ENDPOINT=endpoint,
            OTEL_EXPORTER_OTLP_PROTOCOL="grpc",
            OTEL_SERVICE_NAME="gg-grpc",
            OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="true",
            **EXPORT_SOON,
        )
        header, trace_id, parent_id = traceparent()
        body = {"input": {"question": f"over grpc {marker}"}}
        answer = httpx.post(
            f"{server.url}/chat/invoke", json=body, headers={"traceparent": header}, timeout=60
        )
        assert answer.status_code == 200, answer.text
        received.wait_for(complete(trace_id, f"chat {PRIMARY_MODEL}", "llm"))
        tree = Tree(received.trace(trace_id))
        assert tree.server().parent_id == parent_id
        assert tree.server().service == "gg-grpc"
        # The operator asked for the text: the model span carries the prompt and the reply.
        call = tree.one(f"chat {PRIMARY_MODEL}")
        assert f"over grpc {marker}" in call.attributes["gen_ai.input.messages"]
        assert call.attributes["gen_ai.output.messages"]
        received.wait_for(lambda r: "gen_ai.client.operation.duration" in r.metric_names)
