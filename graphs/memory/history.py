"""History trimming: a long session costs O(1) per turn, and what is kept is always a
conversation a provider accepts.

Messages are trimmed in units that stand or go together: a system message, a human message,
an AI message with the tool results that answer its calls, a lone AI message. A unit the
provider would refuse (a tool result that answers no call before it, a tool call left
unanswered before the conversation moved on) is never kept. Some units are never dropped: the
client's system messages (they come first), the turn being answered, and the human message that
started it when the turn continues it (an agent's tool results). Older exchanges go first, whole,
from the oldest, so what is kept starts at a human message; then the oldest steps of the
current turn. What must be kept is kept whole, past `max_messages` if need be; past the token
budget it is `InputTooLong`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from graphs.errors import InvalidInput, refuse_too_long
from graphs.model.tokens import TokenCounter

UNANSWERED_CALLS = (
    "A tool result must answer a call of the message before it, and every call of that message "
    "must be answered, once, before anything else is said."
)


@dataclass(frozen=True)
class TokenBudget:
    """`MAX_INPUT_TOKENS` (`limit`) for the kept messages, counted by `counter`, and what else the
    prompt holds (`fixed`: the route's prompt)."""

    limit: int
    counter: TokenCounter
    fixed: int = 0

    @property
    def room(self) -> int:
        return self.limit - self.fixed


@dataclass(frozen=True)
class Unit:
    """Messages `start` to `end` (exclusive) of a conversation, kept or dropped together."""

    start: int
    end: int
    valid: bool

    @property
    def size(self) -> int:
        return self.end - self.start


def with_turn(
    history: Sequence[BaseMessage], turn: Sequence[BaseMessage]
) -> tuple[list[BaseMessage], int]:
    """The session's messages followed by the turn's, and how many are the turn's. System
    messages go first (providers want them there); a turn's system messages replace the
    session's, so a client that resends its instructions each turn does not pile them up."""
    new_systems = [m for m in turn if isinstance(m, SystemMessage)]
    systems = new_systems or [m for m in history if isinstance(m, SystemMessage)]
    earlier = [m for m in history if not isinstance(m, SystemMessage)]
    later = [m for m in turn if not isinstance(m, SystemMessage)]
    return [*systems, *earlier, *later], len(later)


def units_of(messages: Sequence[BaseMessage]) -> list[Unit]:
    """The conversation cut into units (see the module doc), each marked valid or not: a unit
    of calls is valid when each of its calls is answered once, or none is yet and nothing
    follows."""
    units: list[Unit] = []
    index = 0
    while index < len(messages):
        message, end = messages[index], index + 1
        ids = call_ids(message)
        while end < len(messages) and answers(messages[end], ids):
            end += 1
        answered = [cast(ToolMessage, m).tool_call_id for m in messages[index + 1 : end]]
        last = end == len(messages)
        valid = not isinstance(message, ToolMessage) and (
            sorted(answered) == sorted(ids) or (not answered and last)
        )
        units.append(Unit(index, end, valid))
        index = end
    return units


def call_ids(message: BaseMessage) -> list[str]:
    """The ids of a message's tool calls, those the provider sent malformed included (a
    client answers them too)."""
    if not isinstance(message, AIMessage):
        return []
    calls = [*message.tool_calls, *message.invalid_tool_calls]
    return [str(call["id"]) for call in calls if call.get("id")]


def answers(message: BaseMessage, call_ids: list[str]) -> bool:
    return isinstance(message, ToolMessage) and message.tool_call_id in call_ids


def fit_history(
    messages: Sequence[BaseMessage],
    keep_last: int,
    max_messages: int,
    budget: TokenBudget | None = None,
) -> list[BaseMessage]:
    """`messages` trimmed to `max_messages` and `budget`, keeping the last `keep_last` (the
    turn, or the turn and its reply) and what they need (see the module doc)."""
    units = units_of(messages)
    first_kept = len(messages) - keep_last
    pinned = [
        unit.end > first_kept or isinstance(messages[unit.start], SystemMessage) for unit in units
    ]
    if any(keep and not unit.valid for unit, keep in zip(units, pinned, strict=True)):
        raise InvalidInput(UNANSWERED_CALLS)
    anchor = turn_start(messages, units, first_kept)
    if anchor is not None:
        pinned[anchor] = True
    kept = [unit.valid for unit in units]
    sizes = [unit.size for unit in units]
    tokens = [
        budget.counter.count_messages(messages[unit.start : unit.end]) if budget else 0
        for unit in units
    ]
    for group in drop_order(messages, units, pinned, anchor):
        count = sum(size for size, k in zip(sizes, kept, strict=True) if k)
        used = sum(size for size, k in zip(tokens, kept, strict=True) if k)
        if count <= max_messages and (budget is None or used <= budget.room):
            break
        for index in group:
            kept[index] = False
    if budget is not None:
        used = sum(size for size, k in zip(tokens, kept, strict=True) if k)
        refuse_too_long(budget.fixed + used, budget.limit, "The turn with what it must keep")
    return [
        m for unit, k in zip(units, kept, strict=True) if k for m in messages[unit.start : unit.end]
    ]


def turn_start(messages: Sequence[BaseMessage], units: list[Unit], first_kept: int) -> int | None:
    """The unit of the human message that started the turn, when the turn continues it (its
    first message is not a human one); None otherwise."""
    if first_kept >= len(messages) or isinstance(messages[first_kept], HumanMessage):
        return None
    humans = [
        i
        for i, unit in enumerate(units)
        if unit.end <= first_kept and isinstance(messages[unit.start], HumanMessage)
    ]
    return humans[-1] if humans else None


def drop_order(
    messages: Sequence[BaseMessage], units: list[Unit], pinned: list[bool], anchor: int | None
) -> list[list[int]]:
    """The units that may go, in groups that go together, in the order they go: before the
    turn's start, whole exchanges from the oldest (an exchange runs from a human message to
    the next), so what is kept starts at a human message; then the steps of the current turn,
    oldest first."""
    boundary = len(units) if anchor is None else anchor
    groups: list[list[int]] = []
    for index, keep in enumerate(pinned[:boundary]):
        if keep:
            continue
        if not groups or isinstance(messages[units[index].start], HumanMessage):
            groups.append([])
        groups[-1].append(index)
    steps = [[index] for index in range(boundary + 1, len(units)) if not pinned[index]]
    return [*groups, *steps]
