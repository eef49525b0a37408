"""History trimming: a long session costs O(1) per turn."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import BaseMessage, HumanMessage

from graphs.runtime.tokens import TokenCounter


def trim_history(messages: Sequence[BaseMessage], max_messages: int) -> list[BaseMessage]:
    """The newest `max_messages` messages, starting at a human turn so no reply is orphaned."""
    kept = list(messages[-max_messages:]) if max_messages > 0 else []
    while kept and not isinstance(kept[0], HumanMessage):
        kept.pop(0)
    return kept


def fit_history(
    messages: Sequence[BaseMessage], max_messages: int, budget: int, counter: TokenCounter
) -> list[BaseMessage]:
    """The newest history within `max_messages` and `budget` tokens, oldest dropped first,
    starting at a human turn (so no reply or tool result is orphaned)."""
    kept = trim_history(messages, max_messages)
    sizes = [counter.count_messages([message]) for message in kept]
    total, start = sum(sizes), 0
    while start < len(kept) and total > budget:
        total -= sizes[start]
        start += 1
    return trim_history(kept[start:], max_messages)
