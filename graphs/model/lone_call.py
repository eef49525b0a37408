"""A model call that no turn runs around: each call of a graph route's model under `langgraph
dev`, where no serving layer admits the run and no llm node opens a turn. The call is then a
turn of its own: admitted (the rate window counts it, the budgets reserve its worst case),
and its usage recorded in the ledger when it ends, partial when it fails or is cut short, as
the llm node does for a turn. Served by graphgate, every run opens its turn first and this
never runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from langchain_core.messages import AIMessageChunk

from graphs.limits.reservations import input_to_reserve, record_finished, record_unfinished
from graphs.model.turn import Turn
from graphs.nodes.limit import admit, refusal
from graphs.route_services import RouteServices


async def accounted_alone(
    services: RouteServices, turn: Turn, answer: AsyncIterator[AIMessageChunk]
) -> AsyncIterator[AIMessageChunk]:
    """`answer`'s chunks, the call admitted before and recorded after as the turn `turn`."""
    worst = (input_to_reserve(services, 0), turn.params.max_tokens)
    decision, reservations = await admit(services, turn.principal, [worst])
    if not decision.allowed:
        raise refusal(decision, services.settings.rate_limit_window)
    held = [reservation.as_state() for reservation in reservations]
    try:
        async for chunk in answer:
            yield chunk
    except BaseException:
        await record_unfinished(services, turn, held)
        raise
    await record_finished(services, turn, turn.metadata(), held)
