"""A graph route's run: the team's graph, as one turn of graphgate's accounting.

The chat graph's limit and llm nodes do this for a chain; a graph route runs the team's own
graph, so it is done around it: one `Turn` for the whole run (every model call inside the
graph is counted in it, `graphs/model/turn.py`), the budget reservation admission took for
the run claimed, the route's `REQUEST_TIMEOUT` around the whole run, and its usage recorded
when it ends, marked partial when it fails or is cancelled. A thread's run checkpoints once,
when it ends (`durability="exit"`), as a chat turn does; a background run, every step.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.types import Durability, StreamMode

from graphs.errors import UpstreamTimeout
from graphs.graph_routes import Graph, GraphRoute
from graphs.limits.reservations import record_finished, record_unfinished
from graphs.model.turn import running_turn
from graphs.nodes.llm import turn_of
from graphs.run_facts import facts_of


def run_options(config: RunnableConfig, durability: Durability = "exit") -> dict[str, Any]:
    """Sessions checkpoint once, when the run ends (`durability="exit"`), unless told otherwise
    (a background run checkpoints every step, where another worker can take it over); one-off
    runs not at all."""
    return {"durability": durability} if "thread_id" in config["configurable"] else {}


async def graph_parts(
    graph: Graph,
    graph_input: Any,
    config: RunnableConfig,
    stream_mode: Sequence[StreamMode],
    subgraphs: bool,
    with_events: bool,
    durability: Durability = "exit",
) -> AsyncIterator[Any]:
    """`Pregel.astream`'s parts; `with_events`, also every callback event of the run as the
    part `("events", event)` (`(namespace, "events", event)` with `subgraphs`): the run then
    streams through `astream_events`, whose root run's `on_chain_stream` events carry the
    other modes' parts (the LangGraph server does the same)."""
    options: dict[str, Any] = {"stream_mode": list(stream_mode), "subgraphs": subgraphs}
    options.update(run_options(config, durability))
    if not with_events:
        async for part in graph.astream(graph_input, config, **options):
            yield part
        return
    root = str(config.get("run_id"))
    async for event in graph.astream_events(graph_input, config, version="v2", **options):
        if event["event"] == "on_chain_stream" and event["run_id"] == root:
            yield event["data"]["chunk"]
        else:
            yield ((), "events", event) if subgraphs else ("events", event)


async def stream_graph_run(
    route: GraphRoute,
    graph_input: Any,
    config: RunnableConfig,
    stream_mode: Sequence[StreamMode],
    subgraphs: bool = False,
    with_events: bool = False,
    durability: Durability = "exit",
) -> AsyncIterator[Any]:
    """The run's stream parts (`graph_parts`), accounted as one turn. It must be consumed by
    one task, which the turn's context variable lives in."""
    services = route.services
    settings = services.settings
    graph = route.graph if "thread_id" in config["configurable"] else route.stateless_graph
    admission = facts_of(config).admission
    reservation = admission.claim() if admission is not None else None
    held = [reservation.as_state()] if reservation is not None else []
    with running_turn(turn_of(config, settings.max_output_tokens)) as turn:
        try:
            async with asyncio.timeout(settings.request_timeout):
                async for part in graph_parts(
                    graph, graph_input, config, stream_mode, subgraphs, with_events, durability
                ):
                    yield part
        except TimeoutError as exc:
            await record_unfinished(services, turn, held)
            raise UpstreamTimeout(
                f"The run did not finish within REQUEST_TIMEOUT={settings.request_timeout:g} s."
            ) from exc
        except BaseException:
            await record_unfinished(services, turn, held)
            raise
    await record_finished(services, turn, turn.metadata(), held)
    if admission is not None:
        admission.settled(held)
