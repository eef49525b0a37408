"""A compiled graph as a route's chain that asks a person before it answers: it calls
`interrupt` with a question, then answers with the model if the person said yes."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import interrupt


def make_graph(model: BaseChatModel) -> CompiledStateGraph[Any, Any, Any, Any]:
    async def ask_first(state: MessagesState) -> dict[str, Any]:
        allowed = interrupt({"question": "May I answer?"})
        if allowed != "yes":
            return {"messages": [AIMessage("I was asked not to answer.")]}
        return {"messages": [await model.ainvoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("ask_first", ask_first)
    builder.add_edge(START, "ask_first")
    return builder.compile()
