"""persist: the accepted turn and its reply join the history, trimmed to its bound. (The turn's
usage reached the ledger in the llm node, as soon as the model had answered: a run stopped
between the two nodes has still recorded what it paid for.)"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import RemoveMessage
from langgraph.graph.message import REMOVE_ALL_MESSAGES

from graphs.memory.history import fit_history, with_turn
from graphs.route_services import RouteServices
from graphs.state import ChatState


def make_persist(services: RouteServices) -> Any:
    async def persist(state: ChatState) -> dict[str, Any]:
        messages, turn_size = with_turn(state.get("history", []), [*state["turn"], state["reply"]])
        kept = fit_history(messages, turn_size, services.settings.max_history_messages)
        # The checkpoint stores the whole channel anyway, so replacing the list costs nothing.
        return {"history": [RemoveMessage(id=REMOVE_ALL_MESSAGES), *kept], "turn": []}

    return persist
