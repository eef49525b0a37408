"""A graph route with a subgraph: the outer graph's `inner` node is a compiled graph whose
node writes to the custom stream and calls the model."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.config import get_stream_writer
from langgraph.graph import START, MessagesState, StateGraph


def make_graph(model: BaseChatModel) -> StateGraph[Any]:
    async def answer(state: MessagesState) -> dict[str, Any]:
        get_stream_writer()({"progress": "asking the model"})
        return {"messages": [await model.ainvoke(state["messages"])]}

    inner = StateGraph(MessagesState)
    inner.add_node("answer", answer)
    inner.add_edge(START, "answer")
    outer = StateGraph(MessagesState)
    outer.add_node("inner", inner.compile())
    outer.add_edge(START, "inner")
    return outer
