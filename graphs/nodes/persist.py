"""persist: the turn's usage goes to the ledger; the accepted turn and its reply join the
history, trimmed to its bound. A turn that never gets here (it failed, or was cancelled) still
has its model calls' usage recorded, marked partial, by `record_unfinished`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import RemoveMessage
from langchain_core.runnables import RunnableConfig
from langgraph.graph.message import REMOVE_ALL_MESSAGES

from graphs.history import fit_history, with_turn
from graphs.identity import principal_of
from graphs.reservations import settle_turn
from graphs.runtime.context import ChatRuntime
from graphs.runtime.redis_client import REDIS_FAILURES
from graphs.runtime.turn import Turn
from graphs.runtime.usage import Usage
from graphs.state import ChatState

logger = logging.getLogger(__name__)


def usage_of(metadata: dict[str, Any], *, partial: bool = False) -> Usage:
    """The ledger's entry for a turn, from its metadata (`Turn.metadata`)."""
    tokens = metadata.get("usage") or {}
    return Usage(
        input_tokens=tokens.get("input_tokens", 0),
        output_tokens=tokens.get("output_tokens", 0),
        total_tokens=tokens.get("total_tokens", 0),
        cost_usd=metadata.get("cost_usd") or 0.0,
        cache_hits=int(bool(metadata.get("cache_hit"))),
        partial_requests=int(partial),
        partial_tokens=tokens.get("total_tokens", 0) if partial else 0,
    )


async def record_unfinished(
    runtime: ChatRuntime, principal: str, turn: Turn, reservations: Sequence[dict[str, Any]]
) -> None:
    """A turn that failed or was cancelled is not stored, but what its model calls used was
    paid for: it goes to the ledger (and so counts against the budgets), marked partial, and
    replaces the turn's budget reservation. The write is shielded from the cancellation that
    may be ending the turn; a failing ledger is logged, not raised over the turn's own failure."""
    await turn.settle()
    metadata = turn.metadata()
    usage = usage_of(metadata, partial=True) if turn.calls else None
    try:
        await asyncio.shield(
            settle_turn(runtime, principal, metadata["model"], usage, reservations)
        )
    except REDIS_FAILURES as exc:
        logger.warning("recording an unfinished turn's usage failed: %s", type(exc).__name__)


def make_persist(runtime: ChatRuntime) -> Any:
    async def persist(state: ChatState, config: RunnableConfig) -> dict[str, Any]:
        reply = state["reply"]
        metadata = reply.response_metadata
        model = str(metadata.get("model", "unknown"))
        # Shielded: a client gone while the ledger is written must not unrecord a paid turn.
        await asyncio.shield(
            settle_turn(
                runtime,
                principal_of(config),
                model,
                usage_of(metadata),
                state.get("reservations", []),
            )
        )
        messages, turn_size = with_turn(state.get("history", []), [*state["turn"], reply])
        kept = fit_history(messages, turn_size, runtime.settings.max_history_messages)
        # The checkpoint stores the whole channel anyway, so replacing the list costs nothing.
        return {
            "history": [RemoveMessage(id=REMOVE_ALL_MESSAGES), *kept],
            "turn": [],
            "reservations": [],  # settled
        }

    return persist
