"""The official LangGraph Python client (`langgraph-sdk`) and `RemoteGraph` against a running
graphgate in Redis mode with API keys, serving the example agent (`examples/agent.py`): the
tool runs in the server, the model's calls are the OpenAI double's."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse
from langchain_core.runnables import RunnableConfig
from langgraph.pregel.remote import RemoteGraph
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import ConflictError, NotFoundError, RateLimitError
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis

from tests.conftest import ApiKey, create_key
from tests.example_agent import ANSWER, agent_behaves, ask
from tests.http.test_budget_reservation import away_from_the_minute_end
from tests.live_servers import Graphgate
from tests.upstream import Upstream


@pytest.fixture(scope="module")
def other_key(redis_url: str) -> ApiKey:
    return create_key(f"lg-{uuid.uuid4().hex[:10]}", redis_url=redis_url)


async def test_assistants_are_the_graph_routes_by_name(client: LangGraphClient) -> None:
    found = await client.assistants.search(graph_id="agent")
    assert [a["assistant_id"] for a in found] == ["agent"]
    assert (await client.assistants.get("agent"))["graph_id"] == "agent"
    drawn = await client.assistants.get_graph("agent")
    assert {node["id"] for node in drawn["nodes"]} >= {"agent", "tools"}
    schemas: Any = await client.assistants.get_schemas("agent")
    assert "messages" in schemas["input_schema"]["properties"]
    with pytest.raises(NotFoundError):
        await client.assistants.get("chat")  # a chain route: LangServe's, not an assistant


async def test_a_streamed_run_carries_values_updates_and_tokens_one_by_one(
    client: LangGraphClient, upstream: Upstream, marker: str
) -> None:
    agent_behaves(upstream, marker, tokens_per_second=20)
    thread = await client.threads.create(metadata={"topic": marker})
    events: list[tuple[str, Any]] = []
    stats_at_first_token = None
    async for part in client.runs.stream(
        thread["thread_id"],
        "agent",
        input=ask(marker),
        stream_mode=["values", "updates", "messages-tuple"],
    ):
        events.append((part.event, part.data))
        is_token = part.event == "messages" and part.data[0]["type"] == "AIMessageChunk"
        if is_token and part.data[0]["content"] and stats_at_first_token is None:
            stats_at_first_token = await upstream.astats(marker)
    names = [name for name, _ in events]
    assert names[0] == "metadata"
    assert {"values", "updates", "messages"} <= set(names)
    tokens = [
        d[0]["content"]
        for n, d in events
        if n == "messages" and d[0]["type"] == "AIMessageChunk" and d[0]["content"]
    ]
    assert "".join(tokens) == ANSWER
    assert len(tokens) == len(ANSWER.split())
    # The first token came while the answering call was still streaming.
    assert stats_at_first_token is not None
    assert stats_at_first_token["completed"] == 1
    assert {"agent", "tools"} <= {node for n, d in events if n == "updates" for node in d}
    final = [d for n, d in events if n == "values"][-1]["messages"]
    assert [m["type"] for m in final] == ["human", "ai", "tool", "ai"]
    assert final[1]["tool_calls"][0]["name"] == "search_docs"
    assert final[2]["content"].startswith("limits: ")
    assert "Retry-After" in final[2]["content"]
    assert final[3]["content"] == ANSWER
    assert all(m["usage_metadata"]["total_tokens"] > 0 for m in final if m["type"] == "ai")
    run_id = events[0][1]["run_id"]
    assert (await client.runs.get(thread["thread_id"], run_id))["status"] == "success"
    state: Any = await client.threads.get_state(thread["thread_id"])
    assert [m["type"] for m in state["values"]["messages"]] == ["human", "ai", "tool", "ai"]
    assert state["checkpoint"]["thread_id"] == thread["thread_id"]
    found: Any = await client.threads.get(thread["thread_id"])
    assert found["status"] == "idle"
    assert found["metadata"]["graph_id"] == "agent"


async def test_a_run_is_counted_in_usage_and_the_metrics_with_both_model_calls(
    client: LangGraphClient, server: Graphgate, key: ApiKey, upstream: Upstream, marker: str
) -> None:
    agent_behaves(upstream, marker)
    before, tokens_before = usage_total(server, key), tokens_metric(server)
    result = await client.runs.wait(None, "agent", input=ask(marker))
    assert isinstance(result, dict)
    answers = [m for m in result["messages"] if m["type"] == "ai"]
    billed = sum(m["usage_metadata"]["total_tokens"] for m in answers)
    after = usage_total(server, key)
    assert upstream.stats(marker)["completed"] == 2
    assert after.get("total_tokens", 0) - before.get("total_tokens", 0) == billed
    assert after.get("requests", 0) - before.get("requests", 0) == 1
    assert tokens_metric(server) - tokens_before == billed


def tokens_metric(server: Graphgate) -> float:
    """`graphgate_tokens_total`, every model and kind."""
    text = httpx.get(f"{server.url}/metrics").text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "graphgate_tokens_total"
    )


def usage_total(server: Graphgate, key: ApiKey) -> dict[str, float]:
    days = httpx.get(f"{server.url}/usage?days=1", headers=key.headers).json()["days"]
    return days[0]["total"] if days else {}


async def test_wait_state_search_history_and_delete(
    client: LangGraphClient, upstream: Upstream, marker: str
) -> None:
    agent_behaves(upstream, marker)
    thread = await client.threads.create(metadata={"search-me": marker})
    values = await client.runs.wait(thread["thread_id"], "agent", input=ask(marker))
    assert isinstance(values, dict)
    assert values["messages"][-1]["content"] == ANSWER
    found: Any = await client.threads.search(metadata={"search-me": marker})
    assert [t["thread_id"] for t in found] == [thread["thread_id"]]
    assert found[0]["values"]["messages"][-1]["content"] == ANSWER
    history = await client.threads.get_history(thread["thread_id"])
    assert len(history) == 5  # the run's steps, as the LangGraph server keeps them
    assert history[0]["values"] == values
    # The next turn sees the tool call and its result: the whole conversation is the thread's.
    await client.runs.wait(thread["thread_id"], "agent", input=ask(marker))
    sent = upstream.sent_messages(marker)[2]  # the second run's first call
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "assistant", "user"]
    await client.threads.delete(thread["thread_id"])
    with pytest.raises(NotFoundError):
        await client.threads.get(thread["thread_id"])
    assert await client.threads.search(metadata={"search-me": marker}) == []


async def test_a_stateless_run_keeps_nothing(
    client: LangGraphClient, upstream: Upstream, marker: str
) -> None:
    agent_behaves(upstream, marker)
    parts = [p async for p in client.runs.stream(None, "agent", input=ask(marker))]
    assert parts[0].event == "metadata"
    assert parts[-1].event == "values"
    assert parts[-1].data["messages"][-1]["content"] == ANSWER


async def test_cancel_stops_the_run_and_the_upstream_call(
    client: LangGraphClient, upstream: Upstream, marker: str
) -> None:
    agent_behaves(upstream, marker, tokens_per_second=2)
    thread = await client.threads.create()
    stream = client.runs.stream(
        thread["thread_id"], "agent", input=ask(marker), stream_mode="messages-tuple"
    )
    run_id = None
    async for part in stream:
        if part.event == "metadata":
            run_id = part.data["run_id"]
        if part.event == "messages" and part.data[0]["content"]:
            assert run_id is not None
            await client.runs.cancel(thread["thread_id"], run_id)
    await upstream.wait_for(marker, "cancelled")
    assert run_id is not None
    assert (await client.runs.get(thread["thread_id"], run_id))["status"] == "interrupted"
    assert (await client.threads.get(thread["thread_id"]))["status"] == "idle"


async def test_a_client_that_leaves_cancels_its_run(
    client: LangGraphClient, server: Graphgate, key: ApiKey, upstream: Upstream, marker: str
) -> None:
    """`on_disconnect: "cancel"`, the default: the run and its model call stop."""
    agent_behaves(upstream, marker, tokens_per_second=2)
    thread = await client.threads.create()
    url = f"{server.url}/threads/{thread['thread_id']}/runs/stream"
    body = {"assistant_id": "agent", "input": ask(marker), "stream_mode": "messages-tuple"}
    async with (
        httpx.AsyncClient(headers=key.headers, timeout=30) as http,
        aconnect_sse(http, "POST", url, json=body) as source,
    ):
        run_id = None
        async for event in source.aiter_sse():
            if event.event == "metadata":
                run_id = event.json()["run_id"]
            chunk = event.json()[0] if event.event == "messages" else {}
            if chunk.get("type") == "AIMessageChunk" and chunk["content"]:
                break  # the answer has begun: leave
    assert await upstream.wait_for(marker, "cancelled") is not None
    assert run_id is not None
    # The next run takes the thread once the first has let it go, its outcome recorded.
    agent_behaves(upstream, f"next {marker}")
    await client.runs.wait(thread["thread_id"], "agent", input=ask(f"next {marker}"))
    run: Any = await client.runs.get(thread["thread_id"], run_id)
    assert run["status"] == "interrupted"


async def test_another_principal_finds_nothing_of_a_thread(
    client: LangGraphClient, server: Graphgate, other_key: ApiKey, upstream: Upstream, marker: str
) -> None:
    agent_behaves(upstream, marker)
    thread = await client.threads.create(metadata={"owner-only": marker})
    tid = thread["thread_id"]
    parts = [p async for p in client.runs.stream(tid, "agent", input=ask(marker))]
    run_id = parts[0].data["run_id"]
    async with get_client(url=server.url, api_key=other_key.key) as other:
        for call in (
            other.threads.get(tid),
            other.threads.get_state(tid),
            other.threads.get_history(tid),
            other.threads.update(tid, metadata={"taken": True}),
            other.threads.delete(tid),
            other.runs.get(tid, run_id),
            other.runs.list(tid),
            other.runs.cancel(tid, run_id),
            other.runs.wait(tid, "agent", input=ask(marker)),
        ):
            with pytest.raises(httpx.HTTPStatusError) as refused:
                await call
            assert refused.value.response.status_code == 404
        assert await other.threads.search(metadata={"owner-only": marker}) == []
    assert upstream.stats(marker)["completed"] == 2  # the owner's run only
    owned: Any = await client.threads.get(tid)
    assert owned["metadata"].get("taken") is None


async def test_a_second_run_on_a_busy_thread_with_reject_is_a_conflict(
    client: LangGraphClient, upstream: Upstream, marker: str
) -> None:
    agent_behaves(upstream, marker, tokens_per_second=10)
    thread = await client.threads.create()
    first = asyncio.ensure_future(client.runs.wait(thread["thread_id"], "agent", input=ask(marker)))
    await upstream.wait_for(marker, "in_flight")
    with pytest.raises(ConflictError):
        async for _ in client.runs.stream(
            thread["thread_id"], "agent", input=ask(marker), multitask_strategy="reject"
        ):
            pass
    assert (await client.threads.get(thread["thread_id"]))["status"] == "busy"
    assert isinstance(await first, dict)


async def test_a_principal_over_its_rate_limit_gets_429_before_any_model_call(
    server: Graphgate, redis_url: str, upstream: Upstream, marker: str
) -> None:
    limited = create_key(f"lg-{uuid.uuid4().hex[:10]}", "--rate-limit", "1", redis_url=redis_url)
    agent_behaves(upstream, marker)
    async with get_client(url=server.url, api_key=limited.key) as limited_client:
        await limited_client.runs.wait(None, "agent", input=ask(marker))
        with pytest.raises(RateLimitError):
            async for _ in limited_client.runs.stream(None, "agent", input=ask(marker)):
                pass
    assert upstream.stats(marker)["completed"] == 2  # the first run's two calls only


async def test_a_principal_over_its_token_budget_gets_429_before_any_model_call(
    server: Graphgate, redis_url: str, upstream: Upstream, marker: str
) -> None:
    """A key whose tokens per minute hold exactly one run's worst case (MAX_INPUT_TOKENS plus
    MAX_OUTPUT_TOKENS, 2000 + 4096): once a run has used some, the next is refused."""
    budgeted = create_key(
        f"lg-{uuid.uuid4().hex[:10]}", "--tokens-per-minute", "6096", redis_url=redis_url
    )
    agent_behaves(upstream, marker)
    away_from_the_minute_end()
    async with get_client(url=server.url, api_key=budgeted.key) as budgeted_client:
        await budgeted_client.runs.wait(None, "agent", input=ask(marker))
        with pytest.raises(RateLimitError) as refused:
            async for _ in budgeted_client.runs.stream(None, "agent", input=ask(marker)):
                pass
    assert refused.value.body["error"]["code"] == "budget_exceeded"  # type: ignore[index]
    assert upstream.stats(marker)["completed"] == 2


def test_remote_graph_invokes_and_streams_the_agent(
    server: Graphgate, key: ApiKey, upstream: Upstream, marker: str
) -> None:
    agent_behaves(upstream, marker)
    remote = RemoteGraph("agent", url=server.url, api_key=key.key)
    result = remote.invoke(ask(marker))
    assert result["messages"][-1]["content"] == ANSWER
    thread: RunnableConfig = {"configurable": {"thread_id": str(uuid.uuid4())}}
    chunks: list[Any] = list(remote.stream(ask(marker), thread, stream_mode="messages"))
    assert "".join(chunk[0]["content"] for chunk in chunks if chunk[0]["type"] == "AIMessageChunk")
    state = remote.get_state(thread)
    assert state.values["messages"][-1]["content"] == ANSWER
    assert remote.get_graph().nodes.keys() >= {"agent", "tools"}


def keys_of(redis: Redis, principal: str) -> dict[str, int]:
    """Every key in the principal's slot or a thread of theirs (limits, usage, records, events,
    checkpoints, locks), and the background runs' leases, with its TTL (-1: none); a key gone
    since the scan (a released lock) is left out."""
    found = [k.decode() for k in redis.scan_iter(match="graphgate:*", count=1000)]
    ttls = {k: redis.ttl(k) for k in found if principal in k or "{lg_runs}" in k}
    return {k: ttl for k, ttl in ttls.items() if ttl != -2}


async def test_every_key_a_run_writes_in_redis_expires(
    client: LangGraphClient, key: ApiKey, redis_url: str, upstream: Upstream, marker: str
) -> None:
    """Seen while a resumable background run holds its lease, and once it has ended."""
    agent_behaves(upstream, marker, tokens_per_second=5)
    thread = (await client.threads.create())["thread_id"]
    created: Any = await client.runs.create(
        thread, "agent", input=ask(marker), stream_resumable=True
    )
    assert await upstream.wait_for(marker, "completed", within=10) is not None
    with Redis.from_url(redis_url) as redis:
        during = keys_of(redis, key.principal)
        await client.runs.join(thread, created["run_id"])
        after = keys_of(redis, key.principal)
    assert {k for k, ttl in during.items() if ttl <= 0} == set()
    assert {k for k, ttl in after.items() if ttl <= 0} == set()
    assert any("lg_run_leases:" in k for k in during)
    assert any("lg_run_owners:" in k for k in during)
    kinds = ["checkpoint:", "lg_thread:", "lg_threads:", "lg_run:", "lg_events:", "lg_thread_runs:"]
    assert all(any(kind in k for k in after) for kind in kinds), sorted(after)
