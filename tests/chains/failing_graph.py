"""A graph route whose node fails: what a client sees of a run that breaks once it started."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.graph import START, MessagesState, StateGraph


def make_graph(model: BaseChatModel) -> StateGraph[Any]:
    async def broken(state: MessagesState) -> dict[str, Any]:
        raise RuntimeError("a secret detail the client must not see")

    builder = StateGraph(MessagesState)
    builder.add_node("broken", broken)
    builder.add_edge(START, "broken")
    return builder
