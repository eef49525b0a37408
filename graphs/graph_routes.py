"""A graph route: the team's own LangGraph graph, made from graphgate's model and served as the
team wrote it (its state schema, nodes and tools), with graphgate's checkpointer for its
threads. The factory is called once, at start-up, with the route's `GatewayChatModel`, so
every model call inside the graph goes through the gateway (cache, concurrency slots,
retries, fallback, usage and cost per call). A `StateGraph` is compiled here; an
already-compiled graph gets the checkpointer attached with `Pregel.copy`, as the LangGraph
server attaches its own.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import StateGraph
from langgraph.pregel import Pregel

from graphs.model.gateway_model import GatewayChatModel
from graphs.route_services import RouteServices
from graphs.routes import RouteFileError, RouteSpec

logger = logging.getLogger("graphgate")

Graph = Pregel[Any, Any, Any, Any]
# What LangGraph names a graph compiled without a name.
UNNAMED = "LangGraph"


@dataclass
class GraphRoute:
    """One graph route: its services, its graph with the checkpointer (threads) and without
    (stateless runs, and the LangGraph server, which brings its own persistence)."""

    spec: RouteSpec
    services: RouteServices
    graph: Graph
    stateless_graph: Graph
    built_at: float = field(default_factory=time.time)


def build_graph_route(
    services: RouteServices, spec: RouteSpec, checkpointer: BaseCheckpointSaver[Any] | None
) -> GraphRoute:
    made = spec.graph_factory()(GatewayChatModel(services=services))
    saver = checkpointer if spec.sessions else None
    if isinstance(made, StateGraph):
        return GraphRoute(
            spec,
            services,
            made.compile(checkpointer=saver, name=spec.name),
            made.compile(name=spec.name),
        )
    if isinstance(made, Pregel):
        if made.store is not None:
            raise RouteFileError(f"route {spec.name}: a graph with a `store` is not served yet")
        if made.checkpointer not in (None, False):
            logger.warning("route %s: the graph's own checkpointer is replaced", spec.name)
        name = spec.name if made.name == UNNAMED else made.name
        return GraphRoute(
            spec,
            services,
            made.copy(update={"checkpointer": saver, "name": name}),
            made.copy(update={"checkpointer": None, "name": name}),
        )
    raise RouteFileError(
        f"route {spec.name}: {spec.graph} returned a {type(made).__name__}, not a StateGraph "
        "or a compiled graph"
    )
