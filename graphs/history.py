"""History trimming: a long session costs O(1) per turn."""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import BaseMessage, HumanMessage


def trim_history(messages: Sequence[BaseMessage], max_messages: int) -> list[BaseMessage]:
    """The newest `max_messages` messages, starting at a human turn so no reply is orphaned."""
    kept = list(messages[-max_messages:]) if max_messages > 0 else []
    while kept and not isinstance(kept[0], HumanMessage):
        kept.pop(0)
    return kept
