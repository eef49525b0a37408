"""`langgraph dev` (in its own venv) serves the same chat graph from langgraph.json, and the
graph's own guard and limit still hold there, where no graphgate HTTP layer runs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client

from scripts.processes import ROOT, ManagedProcess, child_env, free_port
from tests.example_agent import ANSWER, agent_behaves, ask
from tests.live_servers import StartGraphgate
from tests.upstream import Upstream

LANGGRAPH = ROOT / ".venv-langgraph" / "bin" / "langgraph"
LIMIT = 5


def serve_langgraph_dev(log_path: Path, *arguments: str, **settings: str) -> Iterator[str]:
    """`langgraph dev` on a free port with `settings` in its environment, until the module ends."""
    port = free_port()
    command = [str(LANGGRAPH), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1"]
    server = ManagedProcess(
        [*command, *arguments, "--port", str(port)],
        env=child_env(LANGGRAPH_CLI_NO_ANALYTICS="1", **settings),
        ready_text="Application started up",
        log_path=log_path,
    )
    server.start(timeout=120)
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="module")
def langgraph_dev(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from serve_langgraph_dev(
        tmp_path_factory.mktemp("langgraph") / "langgraph-dev.log",
        OPENAI_BASE_URL=upstream.api_url,
        LLM_MODEL="gpt-primary",
        RATE_LIMIT_MAX=str(LIMIT),
    )


@pytest.fixture(scope="module")
def langgraph_examples(
    upstream: Upstream, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The example app's routes (examples/langgraph.json), with Redis and the semantic cache."""
    yield from serve_langgraph_dev(
        tmp_path_factory.mktemp("langgraph") / "langgraph-examples.log",
        "--config",
        str(ROOT / "examples" / "langgraph.json"),
        OPENAI_BASE_URL=upstream.api_url,
        LLM_MODEL="gpt-primary",
        ROUTES_FILE=str(ROOT / "examples" / "routes.toml"),
        REDIS_URL=redis_url,
        CACHE_MODE="semantic",
        EMBEDDINGS_MODEL="openai:text-embedding-3-small",
        # The double's embeddings are hashed bags of words: a paraphrase sharing most words
        # sits near 0.13, a question sharing few near 0.33.
        SEMANTIC_CACHE_THRESHOLD="0.2",
    )


def run(
    url: str, question: str, principal: str = "anonymous", graph: str = "chat"
) -> dict[str, Any]:
    """A stateless run; under langgraph dev the principal comes from the run's config."""
    body = {
        "assistant_id": graph,
        "input": {"question": question},
        "config": {"configurable": {"principal": principal}},
    }
    response = httpx.post(f"{url}/runs/wait", json=body, timeout=60)
    result: dict[str, Any] = response.json()
    return result


async def test_a_langgraph_sdk_client_keeps_memory_in_a_thread(
    langgraph_dev: str, upstream: Upstream, marker: str
) -> None:
    client = get_client(url=langgraph_dev)
    thread = await client.threads.create()
    for question in (f"one {marker}", f"two {marker}"):
        await client.runs.wait(thread["thread_id"], "chat", input={"question": question})
    prompt = [message["content"] for message in upstream.prompts(marker)[-1]]
    assert prompt == [f"one {marker}", f"Echo: one {marker}", f"two {marker}"]
    with pytest.raises(Exception, match="InputTooLong"):  # the SDK raises the run's error
        await client.runs.wait(thread["thread_id"], "chat", input={"question": "word " * 2100})


def test_the_chat_graph_answers_and_its_limit_holds(
    langgraph_dev: str, user: str, marker: str
) -> None:
    answers = [run(langgraph_dev, f"q{turn} {marker}", user) for turn in range(LIMIT + 1)]
    replies = [answer["reply"]["content"] for answer in answers[:LIMIT]]
    assert replies == [f"Echo: q{turn} {marker}" for turn in range(LIMIT)]
    assert answers[LIMIT]["__error__"]["error"] == "RateLimited"


def test_the_guard_holds(langgraph_dev: str) -> None:
    answer = run(langgraph_dev, "word " * 2100)
    assert answer["__error__"]["error"] == "InputTooLong"


def test_the_example_routes_run_under_langgraph_dev(
    langgraph_examples: str, upstream: Upstream, user: str, marker: str
) -> None:
    summary = run(langgraph_examples, f"summarise this {marker}", user, graph="summarize")
    assert summary["reply"]["content"] == f"Echo: summarise this {marker}"
    assert upstream.sent_messages(f"summarise this {marker}")[-1][0]["content"].startswith(
        "Summarise"
    )
    question = f"How do rate limits count requests per principal in a sliding window? {marker}"
    answer = run(langgraph_examples, question, graph="docs")
    assert answer["reply"]["content"] == f"Echo: {question}"
    notes = upstream.sent_messages(question)[-1][0]["content"]
    assert "RATE_LIMIT_WINDOW" in notes


def test_a_paraphrase_is_a_semantic_cache_hit_under_langgraph_dev(
    langgraph_examples: str, upstream: Upstream, user: str, marker: str
) -> None:
    first = run(langgraph_examples, f"What is a vector database {marker}?", user)
    second = run(langgraph_examples, f"Please explain what a vector database is {marker}", user)
    other = run(langgraph_examples, f"What is a relational table {marker}?", user)
    assert first["reply"]["response_metadata"]["cache_hit"] is False
    assert second["reply"]["response_metadata"]["cache_hit"] is True
    assert second["reply"]["content"] == first["reply"]["content"]
    assert other["reply"]["response_metadata"]["cache_hit"] is False
    assert len(upstream.sent_messages(marker)) == 2  # the paraphrase never reached the model


def test_the_example_agent_runs_under_langgraph_dev_each_model_call_counted(
    langgraph_examples: str,
    graphgate_factory: StartGraphgate,
    upstream: Upstream,
    user: str,
    marker: str,
) -> None:
    """No serving layer admits the run there: each model call is admitted and recorded as a
    turn of its own (`graphs/model/lone_call.py`), in the ledger graphgate reads."""
    agent_behaves(upstream, marker)
    body = {
        "assistant_id": "agent",
        "input": ask(marker),
        "config": {"configurable": {"principal": user}},
    }
    result = httpx.post(f"{langgraph_examples}/runs/wait", json=body, timeout=60).json()
    assert [m["type"] for m in result["messages"]] == ["human", "ai", "tool", "ai"]
    assert result["messages"][-1]["content"] == ANSWER
    served = graphgate_factory("redis")
    usage = httpx.get(f"{served.url}/usage?days=1", headers={"X-User-Id": user}).json()
    total = usage["days"][0]["total"]
    assert total["requests"] == 2
    billed = sum(m["usage_metadata"]["total_tokens"] for m in result["messages"][1::2])
    assert total["total_tokens"] == billed


# What the LangGraph server puts in a `messages` event's metadata, that a client may read.
RUN_METADATA = ("langgraph_node", "langgraph_step", "graph_id", "assistant_id", "run_id")


async def a_run_as_a_client_sees_it(url: str, marker: str, **client: Any) -> dict[str, Any]:
    """What one client session sees of a server: each resource's keys, a streamed run's
    event names and headers, a waited run's values, and the statuses of its refusals."""
    async with get_client(url=url, **client) as sdk:
        thread = await sdk.threads.create(metadata={"match": marker})
        events: list[str] = []
        headers: dict[str, Any] = {}
        tagged: set[str] = set()
        async for part in sdk.runs.stream(
            thread["thread_id"],
            "agent",
            input=ask(marker),
            stream_mode=["values", "updates", "messages-tuple"],
            on_run_created=lambda created: headers.update(created),
        ):
            events.append(part.event)
            if part.event == "messages":
                tagged.update(key for key in RUN_METADATA if key in part.data[1])
        state = await sdk.threads.get_state(thread["thread_id"])
        found = await sdk.threads.search(metadata={"match": marker})
        history = await sdk.threads.get_history(thread["thread_id"])
        values = await sdk.runs.wait(thread["thread_id"], "agent", input=ask(marker))
        run = await sdk.runs.get(thread["thread_id"], headers["run_id"])
        assistants = await sdk.assistants.search(graph_id="agent")
        http = sdk.http.client
        missing = await http.get(f"/threads/{uuid.uuid4()}")
        bad_id = await http.get("/threads/not-a-uuid")
        await sdk.threads.delete(thread["thread_id"])
    assert isinstance(values, dict)
    return {
        "thread": sorted(thread),
        "state": sorted(state),
        "checkpoint": sorted(state["checkpoint"] or {}),
        "search": [sorted(t) for t in found],
        "history": len(history),
        "run": sorted(run),
        "run status": run["status"],
        "assistant": sorted(assistants[0]),
        "events": list(dict.fromkeys(events)),
        "first event": events[0],
        "messages": [m["type"] for m in values["messages"]],
        "missing thread": missing.status_code,
        "bad thread id": bad_id.status_code,
        "run created": sorted(headers),
        "token metadata": sorted(tagged),
    }


async def test_graphgate_and_the_langgraph_server_look_the_same_to_the_python_client(
    langgraph_examples: str,
    graphgate_factory: StartGraphgate,
    upstream: Upstream,
    user: str,
    marker: str,
) -> None:
    """The same requests of the example agent, to the reference server (`langgraph dev`) and
    to graphgate: the same resources, events, statuses and headers."""
    agent_behaves(upstream, marker)
    served = graphgate_factory("redis", ROUTES_FILE=str(ROOT / "examples" / "routes.toml"))
    reference = await a_run_as_a_client_sees_it(langgraph_examples, marker)
    ours = await a_run_as_a_client_sees_it(served.url, marker, headers={"X-User-Id": user})
    # The one known difference: graphgate has no LangSmith tracing session to name.
    reference["run"].remove("langsmith_session_name")
    assert ours == reference
