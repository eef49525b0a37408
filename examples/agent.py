"""Agents as graph routes: the model may call `search_docs`, a tool that runs in the server over
the example documents, and answers once it has read the result. The state is the agent's own
(`MessagesState`): a thread keeps the tool calls and their results, so the next turn sees them.

`make_graph` runs the tools the model calls; `make_reviewed_graph` first asks a person, with
an interrupt in LangChain's human-in-the-loop format (the request's `action_requests` and
`review_configs`; the answer's `decisions`: `approve`, `edit` with an `edited_action`, or
`reject` with a `message`), which is what agent-chat-ui's inbox shows and sends.

Served by the LangGraph API as the assistants `agent` and `reviewed_agent`
(`examples/routes.toml`); every model call goes through graphgate's model, so each one is
cached, limited and counted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, SystemMessage, ToolCall, ToolMessage
from langchain_core.tools import BaseTool, tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import Command, interrupt

DOCUMENTS = Path(__file__).parent / "documents"
SYSTEM = SystemMessage(
    "You answer questions about graphgate. Search its documents first, then answer briefly."
)
DECISIONS = ["approve", "edit", "reject"]


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


TOOLS: dict[str, BaseTool] = {search_docs.name: search_docs}


def agent_node(model: BaseChatModel) -> Any:
    agent_model = model.bind_tools(list(TOOLS.values()))

    async def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await agent_model.ainvoke([SYSTEM, *state["messages"]])]}

    return agent


def make_graph(model: BaseChatModel) -> StateGraph[Any]:
    """agent -> (tools -> agent)* -> end: the model decides when it has what it needs."""
    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent_node(model))
    builder.add_node("tools", ToolNode(list(TOOLS.values())))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    return builder


def review_request(calls: list[ToolCall]) -> dict[str, Any]:
    """What the reviewer is asked: each call, and what they may decide of it."""
    return {
        "action_requests": [
            {"name": c["name"], "args": c["args"], "description": f"Run {c['name']}?"}
            for c in calls
        ],
        "review_configs": [
            {"action_name": c["name"], "allowed_decisions": DECISIONS} for c in calls
        ],
    }


def decided(call: ToolCall, decision: dict[str, Any]) -> tuple[ToolCall, ToolMessage | None]:
    """The call as the reviewer left it, and the answer a rejected call gets instead of a run."""
    kind = decision.get("type")
    if kind == "edit":
        edited = decision["edited_action"]
        return {**call, "name": edited["name"], "args": edited["args"]}, None
    if kind == "reject":
        message = decision.get("message") or f"The reviewer rejected {call['name']}."
        rejected = ToolMessage(message, name=call["name"], tool_call_id=call["id"], status="error")
        return call, rejected
    if kind != "approve":
        raise ValueError(f"a review decision is one of {DECISIONS}, not {kind!r}")
    return call, None


def review(state: MessagesState) -> Command[Literal["tools", "agent"]]:
    """Ask a person about the model's tool calls; run those approved or edited, answer the
    rejected ones with the reviewer's message."""
    asking = state["messages"][-1]
    if not isinstance(asking, AIMessage):
        raise ValueError("review follows the model's tool calls")
    answer = interrupt(review_request(asking.tool_calls))
    decisions = answer.get("decisions", []) if isinstance(answer, dict) else []
    if len(decisions) != len(asking.tool_calls):
        raise ValueError(f"{len(asking.tool_calls)} decisions are needed, one per tool call")
    outcomes = [decided(c, d) for c, d in zip(asking.tool_calls, decisions, strict=True)]
    calls = [call for call, _ in outcomes]
    rejected = [message for _, message in outcomes if message is not None]
    revised = asking.model_copy(update={"tool_calls": calls})
    go_to: Literal["tools", "agent"] = "tools" if len(rejected) < len(calls) else "agent"
    return Command(goto=go_to, update={"messages": [revised, *rejected]})


async def run_tools(state: MessagesState) -> dict[str, Any]:
    """The calls of the last AI message that no tool message answers yet."""
    asking = next(m for m in reversed(state["messages"]) if isinstance(m, AIMessage))
    answered = {m.tool_call_id for m in state["messages"] if isinstance(m, ToolMessage)}
    results = []
    for call in asking.tool_calls:
        if call["id"] in answered:
            continue
        found = TOOLS.get(call["name"])
        if found is None:
            results.append(ToolMessage(f"No tool {call['name']!r}.", tool_call_id=call["id"]))
        else:
            results.append(await found.ainvoke(call))
    return {"messages": results}


def to_review(state: MessagesState) -> Literal["review", "__end__"]:
    last = state["messages"][-1]
    return "review" if isinstance(last, AIMessage) and last.tool_calls else END


def make_reviewed_graph(model: BaseChatModel) -> StateGraph[Any]:
    """agent -> (review -> tools -> agent)* -> end: a person approves, edits or rejects each
    tool call before it runs."""
    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent_node(model))
    builder.add_node("review", review)
    builder.add_node("tools", run_tools)
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", to_review)
    builder.add_edge("tools", "agent")
    return builder
