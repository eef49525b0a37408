"""The chat graph's state: the stored history apart from the turn being processed.

The turn's input arrives in `question`/`messages` and enters `history` only in persist, after
guard, limit and the model have accepted it, so a refused turn never pollutes a session.
"""

from __future__ import annotations

from typing import Annotated, Any

from langchain_core.messages import AIMessage, AnyMessage
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict


class ChatInput(TypedDict, total=False):
    """One turn: a question, and/or messages the client holds (the last one is the turn)."""

    question: str
    messages: list[AnyMessage]


class ChatOutput(TypedDict, total=False):
    reply: AIMessage
    history: list[AnyMessage]


class ChatState(TypedDict, total=False):
    history: Annotated[list[AnyMessage], add_messages]
    question: str
    messages: list[AnyMessage]
    turn: list[AnyMessage]
    reply: AIMessage
    # The turn's budget reservations (`graphs/limits/budget.py`), from limit until settled.
    reservations: list[dict[str, Any]]
