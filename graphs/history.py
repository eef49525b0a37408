"""History trimming: a long session costs O(1) per turn."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import BaseMessage, HumanMessage

from graphs.errors import InputTooLong
from graphs.runtime.tokens import TokenCounter


def trim_history(messages: Sequence[BaseMessage], max_messages: int) -> list[BaseMessage]:
    """The newest `max_messages` messages, starting at a human turn so no reply is orphaned."""
    kept = list(messages[-max_messages:]) if max_messages > 0 else []
    while kept and not isinstance(kept[0], HumanMessage):
        kept.pop(0)
    return kept


def fit_history(
    messages: Sequence[BaseMessage],
    max_messages: int,
    budget: int,
    counter: TokenCounter,
    *,
    keep_last_turn: bool = False,
) -> list[BaseMessage]:
    """The newest history within `max_messages` and `budget` tokens, oldest dropped first,
    starting at a human turn (so no reply or tool result is orphaned). `keep_last_turn`: the
    new turn continues the last one (a tool's result answers its call), which must then stay
    whole, or the prompt is too long."""
    kept = trim_history(messages, max_messages)
    sizes = [counter.count_messages([message]) for message in kept]
    last_human = max((i for i, m in enumerate(kept) if isinstance(m, HumanMessage)), default=0)
    keep_from = last_human if keep_last_turn else len(kept)
    if keep_last_turn and sum(sizes[keep_from:]) > budget:
        raise InputTooLong(
            "The turn continues one that no longer fits in MAX_INPUT_TOKENS with it."
        )
    total, start = sum(sizes), 0
    while start < keep_from and total > budget:
        total -= sizes[start]
        start += 1
    return trim_history(kept[start:], max_messages)
