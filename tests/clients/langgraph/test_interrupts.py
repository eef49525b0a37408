"""Human in the loop through the official Python client: the reviewed example agent
(`examples/agent.py: make_reviewed_graph`) interrupts before its tool, in LangChain's
human-in-the-loop format; the thread is `interrupted` and its state shows the request; a run
with `command.resume` approves, edits or rejects the call, and the thread ends `idle`."""

from __future__ import annotations

from typing import Any

import pytest
from langgraph_sdk.client import LangGraphClient

from tests.example_agent import ANSWER, agent_behaves, ask
from tests.upstream import Upstream

REVIEWED = "reviewed_agent"


async def interrupted_thread(client: LangGraphClient, marker: str) -> tuple[str, list[Any]]:
    """A thread whose run stopped for review; the stream's parts."""
    thread = await client.threads.create()
    parts = [
        p
        async for p in client.runs.stream(
            thread["thread_id"], REVIEWED, input=ask(marker), stream_mode=["values", "updates"]
        )
    ]
    return thread["thread_id"], parts


async def test_the_agent_stops_for_review_and_the_thread_shows_the_request(
    client: LangGraphClient, upstream: Upstream, marker: str
) -> None:
    agent_behaves(upstream, marker)
    thread, parts = await interrupted_thread(client, marker)
    updates = [p.data for p in parts if p.event == "updates"]
    pauses = [update["__interrupt__"] for update in updates if "__interrupt__" in update]
    assert len(pauses) == 1
    request = pauses[0][0]["value"]
    assert request["action_requests"][0]["name"] == "search_docs"
    assert request["action_requests"][0]["args"] == {"term": "Retry-After"}
    assert request["review_configs"][0]["allowed_decisions"] == ["approve", "edit", "reject"]
    assert "__interrupt__" in [p for p in parts if p.event == "values"][-1].data
    found: Any = await client.threads.get(thread)
    assert found["status"] == "interrupted"
    state: Any = await client.threads.get_state(thread)
    assert state["next"] == ["review"]
    assert state["interrupts"][0]["value"] == request
    assert state["tasks"][0]["interrupts"][0]["value"] == request
    assert upstream.stats(marker)["completed"] == 1  # the tool has not run


@pytest.mark.parametrize(
    ("decision", "tool_says"),
    [
        ({"type": "approve"}, "limits: "),
        (
            {"type": "edit", "edited_action": {"name": "search_docs", "args": {"term": "session"}}},
            "sessions: ",
        ),
        ({"type": "reject", "message": "Not now."}, "Not now."),
    ],
)
async def test_resuming_approves_edits_or_rejects_the_tool_call(
    client: LangGraphClient,
    upstream: Upstream,
    marker: str,
    decision: dict[str, Any],
    tool_says: str,
) -> None:
    agent_behaves(upstream, marker)
    thread, _ = await interrupted_thread(client, marker)
    values: Any = await client.runs.wait(
        thread, REVIEWED, command={"resume": {"decisions": [decision]}}
    )
    messages = values["messages"]
    assert [m["type"] for m in messages] == ["human", "ai", "tool", "ai"]
    assert messages[2]["content"].startswith(tool_says)
    assert messages[3]["content"] == ANSWER
    if decision["type"] == "edit":
        assert messages[1]["tool_calls"][0]["args"] == {"term": "session"}
    found: Any = await client.threads.get(thread)
    assert found["status"] == "idle"
    assert upstream.stats(marker)["completed"] == 2
