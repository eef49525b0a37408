"""The embedded saver keeps the last checkpoints it is asked to (one per session by default),
with bounded blobs, and forgets idle sessions."""

from __future__ import annotations

from typing import Any

from langchain_core.runnables import RunnableConfig

from graphs.chat import build_chat_graph
from graphs.memory.checkpoint import BoundedMemorySaver
from graphs.route_services import build_services
from graphs.settings import Settings


def embedded_settings() -> Settings:
    return Settings(demo_tokens_per_second=0, llm_model="demo", rate_limit_max=100)


async def ten_turns(saver: BoundedMemorySaver) -> tuple[Any, RunnableConfig, list[int]]:
    """The chat graph on `saver`, its thread after ten turns, and the blobs kept after each."""
    graph = build_chat_graph(build_services(embedded_settings(), None), saver)
    config: RunnableConfig = {"configurable": {"thread_id": "t1"}}
    blob_counts = []
    for turn in range(10):
        await graph.ainvoke({"question": f"q{turn}"}, config, durability="exit")
        blob_counts.append(len(saver.blobs))
    return graph, config, blob_counts


async def test_many_turns_leave_one_checkpoint_and_bounded_blobs() -> None:
    saver = BoundedMemorySaver(ttl_seconds=3600)
    graph, config, blob_counts = await ten_turns(saver)
    assert len(saver.storage["t1"][""]) == 1
    assert blob_counts[-1] == blob_counts[1]
    state = await graph.aget_state(config)
    assert len(state.values["history"]) == 20


async def test_a_saver_keeping_three_reads_the_last_three_back_and_bounds_its_blobs() -> None:
    saver = BoundedMemorySaver(ttl_seconds=3600, keep=3)
    graph, config, blob_counts = await ten_turns(saver)
    assert len(saver.storage["t1"][""]) == 3
    assert blob_counts[-1] == blob_counts[4]
    states = [state async for state in graph.aget_state_history(config)]
    assert [len(state.values["history"]) for state in states] == [20, 18, 16]


async def test_an_idle_session_is_forgotten_after_its_ttl() -> None:
    saver = BoundedMemorySaver(ttl_seconds=0)
    graph = build_chat_graph(build_services(embedded_settings(), None), saver)
    config: RunnableConfig = {"configurable": {"thread_id": "t1"}}
    await graph.ainvoke({"question": "hello"}, config, durability="exit")
    state = await graph.aget_state(config)
    assert not state.values
    assert not saver.blobs
