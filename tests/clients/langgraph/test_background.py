"""Background runs through the official Python client (`langgraph-sdk`) against graphgate in
Redis mode: a run created on a thread answers at once and goes on; `join` waits for its
result; the thread's runs are listed newest first; a stateless one runs on a thread of its own,
gone when it ends; a principal's concurrent background runs are bounded."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import NotFoundError, RateLimitError

from tests.conftest import create_key
from tests.example_agent import ANSWER, EXAMPLE_ROUTES, agent_behaves, ask
from tests.live_servers import StartGraphgate
from tests.upstream import Upstream


async def test_a_background_run_answers_at_once_and_join_returns_its_result(
    client: LangGraphClient, upstream: Upstream, marker: str
) -> None:
    agent_behaves(upstream, marker, tokens_per_second=20)
    thread = await client.threads.create()
    created: Any = await client.runs.create(thread["thread_id"], "agent", input=ask(marker))
    assert created["status"] == "running"
    assert created["kwargs"]["input"] == ask(marker)
    assert upstream.stats(marker)["completed"] < 2  # it answered before the run was done
    joined: Any = await client.runs.join(thread["thread_id"], created["run_id"])
    assert joined["messages"][-1]["content"] == ANSWER
    assert [m["type"] for m in joined["messages"]] == ["human", "ai", "tool", "ai"]
    done = await client.runs.get(thread["thread_id"], created["run_id"])
    assert done["status"] == "success"
    assert (await client.threads.get(thread["thread_id"]))["status"] == "idle"
    again: Any = await client.runs.create(
        thread["thread_id"], "agent", input=ask(marker), multitask_strategy="enqueue"
    )
    await client.runs.join(thread["thread_id"], again["run_id"])
    listed = await client.runs.list(thread["thread_id"])
    assert [r["run_id"] for r in listed] == [again["run_id"], created["run_id"]]
    assert [r["run_id"] for r in await client.runs.list(thread["thread_id"], limit=1)] == [
        again["run_id"]
    ]


async def test_a_stateless_background_run_runs_on_a_thread_of_its_own_gone_when_it_ends(
    client: LangGraphClient, upstream: Upstream, marker: str
) -> None:
    agent_behaves(upstream, marker, tokens_per_second=20)
    created: Any = await client.runs.create(None, "agent", input=ask(marker))
    joined: Any = await client.runs.join(created["thread_id"], created["run_id"])
    assert joined["messages"][-1]["content"] == ANSWER
    with pytest.raises(NotFoundError):
        await client.threads.get(created["thread_id"])
    kept: Any = await client.runs.create(None, "agent", input=ask(marker), on_completion="keep")
    await client.runs.join(kept["thread_id"], kept["run_id"])
    state: Any = await client.threads.get_state(kept["thread_id"])
    assert state["values"]["messages"][-1]["content"] == ANSWER


async def test_a_principals_background_runs_beyond_the_bound_are_429(
    graphgate_factory: StartGraphgate, redis_url: str, upstream: Upstream, marker: str
) -> None:
    agent_behaves(upstream, marker, tokens_per_second=10)
    server = graphgate_factory(
        "redis", AUTH_MODE="api_key", ROUTES_FILE=EXAMPLE_ROUTES, BACKGROUND_RUNS_MAX="1"
    )
    key = create_key(f"lg-{uuid.uuid4().hex[:10]}", redis_url=redis_url)
    async with get_client(url=server.url, api_key=key.key) as sdk:
        first: Any = await sdk.runs.create(None, "agent", input=ask(marker), on_completion="keep")
        with pytest.raises(RateLimitError) as refused:
            await sdk.runs.create(None, "agent", input=ask(marker))
        assert "BACKGROUND_RUNS_MAX" in refused.value.response.text
        await sdk.runs.join(first["thread_id"], first["run_id"])
        second: Any = await sdk.runs.create(None, "agent", input=ask(marker))
        joined: Any = await sdk.runs.join(second["thread_id"], second["run_id"])
    assert joined["messages"][-1]["content"] == ANSWER


async def test_a_background_run_rolled_back_leaves_its_thread_as_it_found_it(
    client: LangGraphClient, upstream: Upstream, marker: str
) -> None:
    """A background run checkpoints every step; rolled back, the thread is put back."""
    agent_behaves(upstream, marker, tokens_per_second=4)
    thread = (await client.threads.create())["thread_id"]
    first: Any = await client.runs.wait(thread, "agent", input=ask(marker))
    before = [m["id"] for m in first["messages"]]
    created: Any = await client.runs.create(thread, "agent", input=ask(marker))
    await upstream.wait_for(marker, "completed", 3, within=10)  # its tool step is written
    after: Any = await client.runs.wait(
        thread, "agent", input=ask(marker), multitask_strategy="rollback"
    )
    assert [m["id"] for m in after["messages"]][: len(before)] == before
    assert len(after["messages"]) == len(before) + 4  # the rolled-back run left none
    with pytest.raises(NotFoundError):
        await client.runs.get(thread, created["run_id"])
