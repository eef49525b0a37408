"""The example app (`examples/`): two chains of its own, declared only in `examples/routes.toml`,
served with graphgate's guard, limits, memory and fallback, through LangServe's clients."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from langchain_core.runnables import RunnableConfig
from langserve import RemoteRunnable

from scripts.processes import ROOT
from tests.conftest import FALLBACK_MODEL, PRIMARY_MODEL
from tests.live_servers import Graphgate, StartGraphgate
from tests.upstream import Upstream

ROUTES_FILE = str(ROOT / "examples" / "routes.toml")
SUMMARIZE_LIMIT = 5  # examples/routes.toml


@pytest.fixture
def app(graphgate_factory: StartGraphgate, mode: str) -> Graphgate:
    return graphgate_factory(mode, ROUTES_FILE=ROUTES_FILE, RATE_LIMIT_MAX="1000")


def client(server: Graphgate, path: str, user: str) -> RemoteRunnable[Any, Any]:
    return RemoteRunnable(f"{server.url}{path}/", headers={"X-User-Id": user}, timeout=30)


def test_the_summarizer_has_its_own_prompt(
    app: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    reply = client(app, "/summarize", user).invoke({"question": f"long text {marker}"})
    assert reply.content == f"Echo: long text {marker}"
    (sent,) = upstream.sent_messages(marker)
    assert sent[0]["content"].startswith("Summarise the user's text")
    assert reply.response_metadata["usage"]["total_tokens"] > 0


def test_the_summarizer_streams_token_by_token_and_batches(
    app: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    upstream.behave(marker, tokens=20)
    summarize = client(app, "/summarize", user)
    chunks = [chunk for chunk in summarize.stream({"question": marker}) if chunk.content]
    assert len(chunks) >= 10
    assert "".join(chunk.content for chunk in chunks) == " ".join(f"w{i}" for i in range(1, 21))
    replies = summarize.batch([{"question": f"a {marker}"}, {"question": f"b {marker}"}])
    assert [len(reply.content.split()) for reply in replies] == [20, 20]


async def test_the_summarizer_streams_events_and_logs(
    app: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    upstream.behave(marker, tokens=12)
    summarize = client(app, "/summarize", user)
    events = [e async for e in summarize.astream_events({"question": marker}, version="v2")]
    tokens = [e["data"]["chunk"].content for e in events if e["event"] == "on_chat_model_stream"]
    assert "".join(tokens) == " ".join(f"w{i}" for i in range(1, 13))
    patches = [patch async for patch in summarize.astream_log({"question": f"log {marker}"})]
    assert len(patches) >= 10


def test_the_retrieval_route_answers_from_the_documents_and_remembers(
    app: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    docs = client(app, "/docs-qa", user).with_config(
        {"configurable": {"session_id": f"qa-{marker}"}}
    )
    docs.invoke({"question": f"How does the fallback model answer? {marker}"})
    question = f"How do rate limits count requests per principal in a sliding window? {marker}-2"
    docs.invoke({"question": question})
    second = upstream.sent_messages(f"{marker}-2")[-1]
    assert "notes only" in second[0]["content"]
    assert "RATE_LIMIT_WINDOW" in second[0]["content"]  # the limits document was retrieved
    assert [m["content"] for m in second[1:]] == [
        f"How does the fallback model answer? {marker}",
        f"Echo: How does the fallback model answer? {marker}",
        question,
    ]


def test_the_route_guard_is_a_400_before_any_stream(app: Graphgate, user: str) -> None:
    body = {"input": {"question": "word " * 700}}  # the route allows 600 tokens
    for endpoint in ("invoke", "stream"):
        response = httpx.post(
            f"{app.url}/summarize/{endpoint}", json=body, headers={"X-User-Id": user}
        )
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "input_too_long"


def test_the_route_rate_limit_is_its_own(app: Graphgate, user: str) -> None:
    summarize = client(app, "/summarize", user)
    for turn in range(SUMMARIZE_LIMIT):
        summarize.invoke({"question": f"q{turn}"})
    response = httpx.post(
        f"{app.url}/summarize/invoke",
        json={"input": {"question": "one too many"}},
        headers={"X-User-Id": user},
    )
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    # The chat route's window is another one.
    assert client(app, "/chat", user).invoke({"question": "still fine"}).content


def test_the_fallback_answers_when_the_primary_fails(
    app: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    upstream.behave(marker, model=PRIMARY_MODEL, statuses=[500, 500, 500, 500])
    reply = client(app, "/summarize", user).invoke({"question": f"fail over {marker}"})
    assert reply.content == f"Echo: fail over {marker}"
    assert reply.response_metadata["fallback_used"] is True
    assert reply.response_metadata["model"] == f"openai:{FALLBACK_MODEL}"


@pytest.mark.parametrize("path", ["/summarize", "/docs-qa"])
def test_each_routes_playground_and_schemas_load(app: Graphgate, path: str, user: str) -> None:
    playground = httpx.get(f"{app.url}{path}/playground/", headers={"X-User-Id": user})
    assert playground.status_code == 200
    assert "<html" in playground.text.lower()
    schema = httpx.get(f"{app.url}{path}/input_schema", headers={"X-User-Id": user})
    assert schema.status_code == 200
    assert "question" in schema.json()["properties"]


def test_sessions_of_two_routes_never_mix(app: Graphgate, user: str, marker: str) -> None:
    session = f"same-{marker}"
    config: RunnableConfig = {"configurable": {"session_id": session}}
    client(app, "/chat", user).with_config(config).invoke({"question": f"chat {marker}"})
    client(app, "/docs-qa", user).with_config(config).invoke({"question": f"docs {marker}"})
    for path, question in (("/chat", f"chat {marker}"), ("/docs-qa", f"docs {marker}")):
        stored = httpx.get(f"{app.url}{path}/sessions/{session}", headers={"X-User-Id": user})
        assert [m["content"] for m in stored.json()["messages"]][:1] == [question]
        assert len(stored.json()["messages"]) == 2


def test_a_compiled_langgraph_graph_is_a_route(
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
    upstream.behave(f"first {marker}", tokens=12)
    graph = client(server, "/graph", user).with_config(
        {"configurable": {"session_id": f"g-{marker}"}}
    )
    chunks = [
        chunk.content for chunk in graph.stream({"question": f"first {marker}"}) if chunk.content
    ]
    assert "".join(chunks) == " ".join(f"w{i}" for i in range(1, 13))
    assert len(chunks) >= 10
    reply = graph.invoke({"question": f"second {marker}"})  # the history holds the marker
    assert reply.content == "".join(chunks)
    assert reply.response_metadata["usage"]["total_tokens"] > 0
    assert [m["role"] for m in upstream.sent_messages(f"second {marker}")[-1]] == [
        "user",
        "assistant",
        "user",
    ]
