"""A run's stream parts as the LangGraph clients read them: SSE events named for their stream
mode (`messages-tuple` is sent as `messages`, `[message, metadata]`; the `messages` mode as
`messages/metadata`, then `messages/partial` with the message so far or
`messages/complete`; `events`, every callback event of the run, `astream_events`' v2), a
subgraph's parts named `<mode>|<node>:<task>|...`. The first event is
`metadata` with the run's id; a failure is an `error` event; the stream ends when the run
does, with no closing event (as the LangGraph server's).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.messages import BaseMessage, BaseMessageChunk
from langgraph.types import StreamMode

from api.langgraph.bodies import StreamModeName
from api.langgraph.wire import dumps

# What the graph streams for each mode asked for (`events` streams through `astream_events`).
NATIVE: dict[StreamModeName, StreamMode] = {
    "values": "values",
    "updates": "updates",
    "messages": "messages",
    "messages-tuple": "messages",
    "custom": "custom",
    "debug": "debug",
    "tasks": "tasks",
    "checkpoints": "checkpoints",
}
INTERRUPT = "__interrupt__"


def run_metadata(run_id: str) -> dict[str, Any]:
    """A run's first event, `metadata`: its id (the clients read it to rejoin or cancel it)."""
    return {"run_id": run_id, "attempt": 1}


def frame(event: str, data: Any, event_id: str | None = None) -> bytes:
    return written_frame(event, dumps(data), event_id)


def written_frame(event: str, data: bytes, event_id: str | None = None) -> bytes:
    """An event whose data is JSON already; with an id (a resumable run's), a client may
    rejoin after it (`Last-Event-ID`)."""
    framed = b"event: " + event.encode() + b"\r\ndata: " + data + b"\r\n"
    if event_id is not None:
        framed += b"id: " + event_id.encode() + b"\r\n"
    return framed + b"\r\n"


def native_modes(modes: Sequence[StreamModeName]) -> list[StreamMode]:
    """What the graph streams: the modes asked for, and always `values` and `updates` (the
    run's result, and its interrupts)."""
    asked = [NATIVE[mode] for mode in modes if mode in NATIVE]
    return list(dict.fromkeys(["values", "updates", *asked]))


class RunEvents:
    """The events of one run's parts, and what the run ended with (its last values, its
    interrupts)."""

    def __init__(self, modes: Sequence[StreamModeName], subgraphs: bool) -> None:
        self._modes = set(modes)
        self._subgraphs = subgraphs
        self._seen: set[str] = set()  # message ids whose metadata is out
        self._partial: dict[str, BaseMessageChunk] = {}
        self.values: Any = None
        self.interrupts: list[Any] = []

    def of(self, part: Any) -> list[tuple[str, Any]]:
        namespace, mode, chunk = part if self._subgraphs else ((), *part)
        if not namespace:
            self._note_result(mode, chunk)
        suffix = "".join(f"|{step}" for step in namespace)
        if mode == "messages":
            return self._messages(chunk, suffix)
        return [(mode + suffix, chunk)] if mode in self._modes else []

    def _note_result(self, mode: str, chunk: Any) -> None:
        if mode == "values":
            self.values = chunk
        elif mode == "updates" and isinstance(chunk, dict) and INTERRUPT in chunk:
            self.interrupts.extend(chunk[INTERRUPT])

    def _messages(self, chunk: Any, suffix: str) -> list[tuple[str, Any]]:
        message, metadata = chunk
        events: list[tuple[str, Any]] = []
        if "messages-tuple" in self._modes:
            events.append(("messages" + suffix, [message, metadata]))
        if "messages" in self._modes:
            events.extend(self._message_parts(message, metadata))
        return events

    def _message_parts(self, message: BaseMessage, metadata: Any) -> list[tuple[str, Any]]:
        """The `messages` mode: never named for a subgraph, as the LangGraph server's."""
        key = message.id or ""
        events: list[tuple[str, Any]] = []
        if key not in self._seen:
            self._seen.add(key)
            events.append(("messages/metadata", {key: {"metadata": metadata}}))
        if isinstance(message, BaseMessageChunk):
            so_far = self._partial.get(key)
            self._partial[key] = message if so_far is None else so_far + message
            events.append(("messages/partial", [self._partial[key]]))
        else:
            events.append(("messages/complete", [message]))
        return events

    def result(self) -> Any:
        """What `runs/wait` answers: the last values, with the interrupts if the run paused."""
        values = self.values if isinstance(self.values, dict) else {}
        if self.interrupts and INTERRUPT not in values:
            return {**values, INTERRUPT: self.interrupts}
        return self.values if self.values is not None else {}
