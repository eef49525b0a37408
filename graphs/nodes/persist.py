"""persist: the turn's usage goes to the ledger; the accepted turn and its reply join the
history, trimmed to its bound."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, RemoveMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph.message import REMOVE_ALL_MESSAGES

from graphs.history import trim_history
from graphs.identity import principal_of
from graphs.runtime.context import ChatRuntime
from graphs.runtime.usage import Usage
from graphs.state import ChatState


def usage_of(reply: AIMessage) -> Usage:
    metadata = reply.response_metadata
    tokens = metadata.get("usage") or {}
    return Usage(
        input_tokens=tokens.get("input_tokens", 0),
        output_tokens=tokens.get("output_tokens", 0),
        total_tokens=tokens.get("total_tokens", 0),
        cost_usd=metadata.get("cost_usd") or 0.0,
        cache_hits=int(bool(metadata.get("cache_hit"))),
    )


def make_persist(runtime: ChatRuntime) -> Any:
    async def persist(state: ChatState, config: RunnableConfig) -> dict[str, Any]:
        reply = state["reply"]
        model = str(reply.response_metadata.get("model", "unknown"))
        await runtime.usage.record(principal_of(config), model, usage_of(reply))
        history = [*state.get("history", []), *state["turn"], reply]
        kept = trim_history(history, runtime.settings.max_history_messages)
        # The checkpoint stores the whole channel anyway, so replacing the list costs nothing.
        return {"history": [RemoveMessage(id=REMOVE_ALL_MESSAGES), *kept], "turn": []}

    return persist
