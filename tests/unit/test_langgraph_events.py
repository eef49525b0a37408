"""A run's stream parts as the LangGraph clients read them (`api/langgraph/events.py`)."""

from __future__ import annotations

import json

from langchain_core.messages import AIMessageChunk, ToolMessage
from langgraph.types import Interrupt

from api.langgraph.events import RunEvents, frame, native_modes

META = {"langgraph_node": "agent"}


def test_every_run_streams_values_and_updates_whatever_the_client_asked() -> None:
    assert native_modes(["messages-tuple"]) == ["values", "updates", "messages"]
    assert native_modes(["messages", "messages-tuple", "custom"]) == [
        "values",
        "updates",
        "messages",
        "custom",
    ]


def test_only_the_modes_asked_for_are_sent_and_values_are_kept_for_wait() -> None:
    events = RunEvents(["updates"], subgraphs=False)
    assert events.of(("values", {"messages": []})) == []
    assert events.of(("updates", {"agent": {"x": 1}})) == [("updates", {"agent": {"x": 1}})]
    assert events.result() == {"messages": []}


def test_messages_tuple_is_sent_as_messages_with_its_metadata() -> None:
    events = RunEvents(["messages-tuple"], subgraphs=False)
    chunk = AIMessageChunk(content="Hel", id="m1")
    assert events.of(("messages", (chunk, META))) == [("messages", [chunk, META])]


def test_messages_mode_sends_metadata_once_then_the_message_so_far() -> None:
    events = RunEvents(["messages"], subgraphs=False)
    first = events.of(("messages", (AIMessageChunk(content="Hel", id="m1"), META)))
    second = events.of(("messages", (AIMessageChunk(content="lo", id="m1"), META)))
    assert [name for name, _ in first] == ["messages/metadata", "messages/partial"]
    assert first[0][1] == {"m1": {"metadata": META}}
    assert second == [("messages/partial", [AIMessageChunk(content="Hello", id="m1")])]
    tool = ToolMessage(content="found", tool_call_id="c1", id="t1")
    assert [name for name, _ in events.of(("messages", (tool, META)))] == [
        "messages/metadata",
        "messages/complete",
    ]


def test_a_subgraphs_parts_are_named_for_their_namespace() -> None:
    events = RunEvents(["updates", "messages-tuple"], subgraphs=True)
    chunk = AIMessageChunk(content="x", id="m1")
    assert events.of((("child:1",), "updates", {"n": {}})) == [("updates|child:1", {"n": {}})]
    assert events.of((("a:1", "b:2"), "messages", (chunk, META)))[0][0] == "messages|a:1|b:2"
    events.of((("child:1",), "values", {"inner": 1}))
    assert events.result() == {}  # a subgraph's values are not the run's


def test_an_interrupted_run_waits_with_its_interrupts() -> None:
    events = RunEvents(["values"], subgraphs=False)
    events.of(("values", {"messages": ["m"]}))
    pause = Interrupt(value={"question": "approve?"}, id="i1")
    events.of(("updates", {"__interrupt__": (pause,)}))
    assert events.result() == {"messages": ["m"], "__interrupt__": [pause]}


def test_a_frame_is_one_sse_event_in_the_langgraph_servers_framing() -> None:
    framed = frame("values", {"messages": [AIMessageChunk(content="é", id="m1")]})
    assert framed.startswith(b"event: values\r\ndata: ")
    assert framed.endswith(b"\r\n\r\n")
    data = json.loads(framed.split(b"data: ", 1)[1])
    assert data["messages"][0]["content"] == "é"
    assert json.loads(frame("x", Interrupt(value=1, id="i")).split(b"data: ")[1]) == {
        "id": "i",
        "value": 1,
    }
