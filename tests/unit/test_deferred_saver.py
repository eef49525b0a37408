"""`DeferredSaver`: a run lent it through LangGraph's `CONFIG_KEY_CHECKPOINTER` writes nothing
until its group commits, then exactly what the real saver would have been given."""

from __future__ import annotations

import operator
from typing import Annotated, Any

from langgraph.constants import CONFIG_KEY_CHECKPOINTER
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from graphs.memory.checkpoint import BoundedMemorySaver
from graphs.memory.deferred_saver import DeferredWrites


class Notes(TypedDict):
    notes: Annotated[list[str], operator.add]


def build(saver: BoundedMemorySaver) -> Any:
    builder = StateGraph(Notes)
    builder.add_node("note", lambda state: {"notes": ["noted"]})
    builder.add_edge(START, "note")
    builder.add_edge("note", END)
    return builder.compile(checkpointer=saver)


def thread(name: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": name}}


def deferred_thread(name: str, saver: BoundedMemorySaver, deferred: DeferredWrites) -> Any:
    """The thread's config with its writes lent to `deferred`, as a batch turn's is."""
    return {"configurable": {"thread_id": name, CONFIG_KEY_CHECKPOINTER: deferred.saver(saver)}}


async def notes(graph: Any, name: str) -> list[str]:
    state = await graph.aget_state(thread(name))
    return list(state.values.get("notes", []))


async def test_a_deferred_run_reads_the_stored_thread_and_writes_only_on_commit() -> None:
    saver = BoundedMemorySaver(ttl_seconds=60)
    graph = build(saver)
    await graph.ainvoke({"notes": ["first"]}, thread("t"), durability="exit")
    deferred = DeferredWrites()

    result = await graph.ainvoke(
        {"notes": ["second"]}, deferred_thread("t", saver, deferred), durability="exit"
    )

    assert result["notes"] == ["first", "noted", "second", "noted"]
    assert await notes(graph, "t") == ["first", "noted"]
    await deferred.commit()
    assert await notes(graph, "t") == ["first", "noted", "second", "noted"]
    await graph.ainvoke({"notes": ["third"]}, thread("t"), durability="exit")
    assert await notes(graph, "t") == ["first", "noted", "second", "noted", "third", "noted"]


async def test_discarded_runs_leave_every_thread_as_it_was() -> None:
    saver = BoundedMemorySaver(ttl_seconds=60)
    graph = build(saver)
    deferred = DeferredWrites()
    await graph.ainvoke(
        {"notes": ["one"]}, deferred_thread("u", saver, deferred), durability="exit"
    )
    await graph.ainvoke(
        {"notes": ["two"]}, deferred_thread("v", saver, deferred), durability="exit"
    )

    await deferred.discard()
    await deferred.commit()  # nothing is left to write

    assert await notes(graph, "u") == []
    assert await notes(graph, "v") == []
