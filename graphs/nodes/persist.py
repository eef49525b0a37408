"""persist: the accepted turn and its reply join the history, trimmed to its bound."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import RemoveMessage
from langgraph.graph.message import REMOVE_ALL_MESSAGES

from graphs.history import trim_history
from graphs.runtime.context import ChatRuntime
from graphs.state import ChatState


def make_persist(runtime: ChatRuntime) -> Any:
    def persist(state: ChatState) -> dict[str, Any]:
        history = [*state.get("history", []), *state["turn"], state["reply"]]
        kept = trim_history(history, runtime.settings.max_history_messages)
        # The checkpoint stores the whole channel anyway, so replacing the list costs nothing.
        return {"history": [RemoveMessage(id=REMOVE_ALL_MESSAGES), *kept], "turn": []}

    return persist
