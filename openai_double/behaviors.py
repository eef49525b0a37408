"""What the double does for a request, and what it has seen."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

LOG_LIMIT = 10_000


class ToolCall(BaseModel):
    """A call the double makes when the request offers tools (`arguments`: a JSON object)."""

    name: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)


class Behavior(BaseModel):
    """How to answer requests whose prompt contains `match` (and, if set, ask for `model`)."""

    match: str = Field(min_length=1)
    model: str | None = None
    statuses: list[int] = Field(default_factory=list)
    retry_after: float | None = None
    tokens: int | None = Field(default=None, ge=1)
    reply: str | None = None
    # The reply's exact pieces, streamed as they are (whitespace included).
    chunks: list[str] | None = None
    # Overrides the finish reason of a text reply (e.g. "content_filter").
    finish_reason: str | None = None
    tokens_per_second: float = Field(default=0.0, ge=0)
    latency_ms: float = Field(default=0.0, ge=0)
    hang: bool = False
    drop_after: int | None = Field(default=None, ge=0)
    malformed: bool = False
    tool_calls: list[ToolCall] = Field(default_factory=list)
    # Answer in text once the tools have answered (the last message is a tool result), as a
    # model ends an agent's loop; otherwise every request that offers tools gets the calls.
    tool_calls_once: bool = False

    def applies_to(self, prompt: str, model: str) -> bool:
        return self.match in prompt and self.model in (None, model)


def prompt_text(body: dict[str, Any]) -> str:
    """The text behaviors and stats match against: the request's messages or inputs as JSON."""
    return json.dumps(body.get("messages", body.get("input", "")), ensure_ascii=False)


def reply_tokens(behavior: Behavior | None, body: dict[str, Any]) -> list[str]:
    """The reply, as the tokens it streams in: words, each but the first with its space."""
    if behavior and behavior.chunks is not None:
        words = behavior.chunks
        return words[: body.get("max_completion_tokens") or body.get("max_tokens")]
    if behavior and behavior.reply is not None:
        words = behavior.reply.split()
    elif behavior and behavior.tokens:
        words = [f"w{i}" for i in range(1, behavior.tokens + 1)]
    else:
        messages = body.get("messages") or [{}]
        last = messages[-1].get("content") or ""
        words = f"Echo: {last if isinstance(last, str) else json.dumps(last)}".split()
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    return [word if i == 0 else f" {word}" for i, word in enumerate(words)][:limit]


def truncated(behavior: Behavior | None, body: dict[str, Any]) -> bool:
    """Whether `max_tokens` cut the reply short (its finish reason is then `length`)."""
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    untruncated = {key: value for key, value in body.items() if "max" not in key}
    return limit is not None and len(reply_tokens(behavior, untruncated)) > int(limit)


def tool_calls(behavior: Behavior | None, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The calls to make: the behavior's, when the request offers tools."""
    if not (behavior and behavior.tool_calls and body.get("tools")):
        return []
    last = (body.get("messages") or [{}])[-1]
    if behavior.tool_calls_once and last.get("role") == "tool":
        return []
    return [
        {
            # Unique per reply, as a provider's ids are: a session holds many calls.
            "id": f"call_{index}_{uuid.uuid4().hex[:12]}",
            "type": "function",
            "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
        }
        for index, call in enumerate(behavior.tool_calls)
    ]


@dataclass
class RequestRecord:
    body: dict[str, Any]
    prompt: str
    started: int
    finished: int | None = None
    cancelled: bool = False
    usage: dict[str, int] | None = None


@dataclass
class Ledger:
    """Registered behaviors and the log of requests seen, with a logical clock for overlap."""

    behaviors: list[Behavior] = field(default_factory=list)
    records: deque[RequestRecord] = field(default_factory=lambda: deque(maxlen=LOG_LIMIT))
    _status_cursor: dict[int, int] = field(default_factory=dict)
    _clock: itertools.count[int] = field(default_factory=itertools.count)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def changed(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, match: str, counter: str, value: int, within: float) -> bool:
        """Wait until the stats of `match` show `counter` at least `value`; False after
        `within` seconds."""
        async with self._changed:
            try:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self.stats(match)[counter] >= value), within
                )
            except TimeoutError:
                return False
        return True

    def add(self, behavior: Behavior) -> None:
        self.behaviors.append(behavior)

    def reset(self) -> None:
        self.behaviors.clear()
        self.records.clear()
        self._status_cursor.clear()

    def start(self, body: dict[str, Any]) -> tuple[RequestRecord, Behavior | None]:
        prompt = prompt_text(body)
        record = RequestRecord(body, prompt, next(self._clock))
        self.records.append(record)
        asyncio.get_running_loop().create_task(self.changed())
        model = str(body.get("model", ""))
        behavior = next((b for b in reversed(self.behaviors) if b.applies_to(prompt, model)), None)
        return record, behavior

    def finish(self, record: RequestRecord, *, cancelled: bool = False) -> None:
        record.finished = next(self._clock)
        record.cancelled = cancelled
        asyncio.get_running_loop().create_task(self.changed())

    def next_status(self, behavior: Behavior) -> int:
        cursor = self._status_cursor.get(id(behavior), 0)
        self._status_cursor[id(behavior)] = cursor + 1
        return behavior.statuses[cursor] if cursor < len(behavior.statuses) else 200

    def stats(self, match: str) -> dict[str, Any]:
        seen = [r for r in self.records if match in r.prompt]
        return {
            "requests": len(seen),
            "in_flight": sum(r.finished is None for r in seen),
            "peak_in_flight": peak_overlap(seen),
            "completed": sum(r.finished is not None and not r.cancelled for r in seen),
            "cancelled": sum(r.cancelled for r in seen),
            "bodies": [r.body for r in seen],
            "usage": [r.usage for r in seen if r.usage is not None],
        }


def peak_overlap(records: list[RequestRecord]) -> int:
    """The most requests that were in flight at one moment."""
    events = sorted(
        [(r.started, 1) for r in records]
        + [(r.finished, -1) for r in records if r.finished is not None]
    )
    peak = current = 0
    for _, step in events:
        current += step
        peak = max(peak, current)
    return peak
