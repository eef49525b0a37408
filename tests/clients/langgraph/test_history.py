"""A thread's history through the official Python client, on Redis: every step of the agent's
runs is a checkpoint, the last `CHECKPOINT_HISTORY` listed newest first with their parents; a
run from an earlier checkpoint (as agent-chat-ui regenerates, sending the parent `checkpoint`)
branches from it; `RemoteGraph` reads the same history."""

from __future__ import annotations

from typing import Any

from langgraph.pregel.remote import RemoteGraph
from langgraph_sdk.client import LangGraphClient

from tests.conftest import ApiKey
from tests.contract.test_langgraph_api import ancestors
from tests.example_agent import ANSWER, agent_behaves, ask
from tests.live_servers import Graphgate
from tests.upstream import Upstream


async def test_the_last_checkpoints_are_listed_and_an_answer_is_regenerated_from_its_parent(
    client: LangGraphClient, server: Graphgate, key: ApiKey, upstream: Upstream, marker: str
) -> None:
    """As agent-chat-ui regenerates: the oldest kept state where the last answer appears, its
    `parent_checkpoint` sent with no input, answers again from there."""
    agent_behaves(upstream, marker)
    thread = (await client.threads.create())["thread_id"]
    for _ in range(3):
        done: Any = await client.runs.wait(thread, "agent", input=ask(marker))
    history: Any = await client.threads.get_history(thread, limit=100)
    assert len(history) == 10  # CHECKPOINT_HISTORY's default, of 15 steps
    assert [h["parent_checkpoint_id"] for h in history[:-1]] == [
        h["checkpoint_id"] for h in history[1:]
    ]
    answer = done["messages"][-1]["id"]
    first_seen = [h for h in history if answer in [m["id"] for m in h["values"]["messages"]]][-1]
    parent = first_seen["parent_checkpoint"]
    again: Any = await client.runs.wait(thread, "agent", input=None, checkpoint=parent)
    assert len(again["messages"]) == len(done["messages"])
    assert again["messages"][-1]["content"] == ANSWER
    assert again["messages"][-1]["id"] != answer
    after: Any = await client.threads.get_history(thread, limit=100)
    assert parent["checkpoint_id"] in ancestors(after)
    assert history[0]["checkpoint_id"] not in ancestors(after)  # a branch beside it
    remote = RemoteGraph("agent", url=server.url, api_key=key.key)
    config: Any = {"configurable": {"thread_id": thread}}
    listed = [s async for s in remote.aget_state_history(config, limit=3)]
    newest: Any = await client.threads.get_history(thread, limit=3)
    assert [s.config["configurable"]["checkpoint_id"] for s in listed] == [
        h["checkpoint_id"] for h in newest
    ]
