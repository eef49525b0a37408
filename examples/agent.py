"""An agent as a graph route: the model may call `search_docs`, a tool that runs in the server
over the example documents, and answers once it has read the result. The state is the
agent's own (`MessagesState`): a thread keeps the tool call and its result, so the next turn
sees them.

Served by the LangGraph API as the assistant `agent` (`examples/routes.toml`); every model
call goes through graphgate's model, so each one is cached, limited and counted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import SystemMessage
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

DOCUMENTS = Path(__file__).parent / "documents"
SYSTEM = SystemMessage(
    "You answer questions about graphgate. Search its documents first, then answer briefly."
)


@tool
def search_docs(term: str) -> str:
    """The lines of graphgate's documents that mention `term` (case-insensitive)."""
    wanted = term.strip().lower()
    lines = [
        f"{path.stem}: {line.strip()}"
        for path in sorted(DOCUMENTS.glob("*.md"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if wanted and wanted in line.lower()
    ]
    return "\n".join(lines[:5]) or f"No document mentions {term!r}."


def make_graph(model: BaseChatModel) -> StateGraph[Any]:
    """agent -> (tools -> agent)* -> end: the model decides when it has what it needs."""
    agent_model = model.bind_tools([search_docs])

    async def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await agent_model.ainvoke([SYSTEM, *state["messages"]])]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode([search_docs]))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    return builder
