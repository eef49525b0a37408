"""The compact form of a channel's message list (`messages/1`) gives back equal messages, every
field and its type kept; a list it cannot hold exactly is stored as LangGraph stores it, and
either is read."""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from graphs.memory.checkpoint_values import FORMAT, CheckpointValues, packed

RICH: list[BaseMessage] = [
    SystemMessage("Be brief.", id="s1"),
    HumanMessage(
        [
            {"type": "text", "text": "What is on this page?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        ],
        name="ada",
        id="h1",
    ),
    AIMessage(
        "",
        tool_calls=[{"name": "lookup", "args": {"q": "page", "n": 3}, "id": "call-1"}],
        usage_metadata={"input_tokens": 12, "output_tokens": 7, "total_tokens": 19},
        response_metadata={"model": "demo:demo", "cost_usd": 0.0001, "fallback_used": False},
        id="run-1",
    ),
    ToolMessage("found it", tool_call_id="call-1", status="error", artifact={"rows": [1, 2]}),
    AIMessage("It shows a chart.", additional_kwargs={"refusal": None}, id="run-2"),
]


def test_a_history_comes_back_equal_with_every_field() -> None:
    codec = CheckpointValues(JsonPlusSerializer(), compact=True)
    stored = codec.dump_channel("00000000000000000000000000000003.0.42", RICH)
    assert stored.startswith(FORMAT.encode() + b"\x00")
    version, messages = codec.load(stored)
    assert version == "00000000000000000000000000000003.0.42"
    assert messages == RICH
    assert [type(m) for m in messages] == [type(m) for m in RICH]


class Finish(enum.Enum):
    STOP = "stop"


class Note(HumanMessage):
    """A team's own message class: only LangGraph's serializer knows how to build it back."""


@pytest.mark.parametrize(
    "value",
    [
        [AIMessageChunk(content="partial")],
        [Note(content="mine")],
        [ToolMessage("x", tool_call_id="c", artifact={"a set", "msgpack cannot hold"})],
        [ToolMessage("x", tool_call_id="c", artifact={"at": datetime(2026, 1, 2, tzinfo=UTC)})],
        [AIMessage("x", additional_kwargs={"request": uuid.UUID(int=7)})],
        [AIMessage("x", response_metadata={"finish": Finish.STOP})],
        [],
        "not a list",
        [{"role": "user", "content": "a dict"}],
    ],
)
def test_what_the_compact_form_cannot_hold_is_stored_as_langgraph_stores_it(value: Any) -> None:
    assert packed(1, value) is None
    codec = CheckpointValues(JsonPlusSerializer(), compact=True)
    stored = codec.dump_channel(1, value)
    assert stored.startswith(b"msgpack\x00")
    assert list(codec.load(stored)) == [1, value]


def test_with_compact_off_a_history_is_written_as_before_and_both_forms_are_read() -> None:
    before = CheckpointValues(JsonPlusSerializer(), compact=False)
    now = CheckpointValues(JsonPlusSerializer(), compact=True)
    old = before.dump_channel(2, RICH)
    assert old.startswith(b"msgpack\x00")
    assert list(now.load(old)) == [2, RICH]
    assert list(before.load(now.dump_channel(2, RICH))) == [2, RICH]
