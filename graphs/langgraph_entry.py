"""The LangGraph server's graph factories (`langgraph.json`): one per route, named after it (a
chain route's chat graph, or a graph route's own graph).

Importing this module defines a factory for the built-in chat and for each route of
`ROUTES_FILE` (it reads that small TOML file and connects to nothing). The first run opens the
graphs' lifecycle (`graphs/service.py`) once per process, inside the server's event loop, and
every later run reuses it, so the limiter, budgets and caches outlive a run; the graphs come
without a checkpointer, since the LangGraph server brings its own persistence.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

from langgraph.pregel import Pregel

from graphs.routes import CHAT, load_route_specs
from graphs.service import GraphService, open_graphs
from graphs.settings import Settings

EntryFactory = Callable[[], Awaitable[Pregel[Any, Any, Any, Any]]]


class ProcessGraphs:
    """The graph service of this process, opened by the first run that needs it."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._service: GraphService | None = None
        self._resources = AsyncExitStack()

    async def service(self) -> GraphService:
        async with self._lock:
            if self._service is None:
                settings = await asyncio.to_thread(Settings)
                opening = open_graphs(settings, with_checkpointer=False)
                self._service = await self._resources.enter_async_context(opening)
        return self._service

    def factory(self, route: str) -> EntryFactory:
        async def make_graph() -> Pregel[Any, Any, Any, Any]:
            service = await self.service()
            served = service.routes.get(route) or service.graph_routes[route]
            return served.stateless_graph

        make_graph.__name__ = f"make_{route}_graph"
        return make_graph


PROCESS_GRAPHS = ProcessGraphs()
chat = PROCESS_GRAPHS.factory(CHAT)
globals().update(
    {spec.name: PROCESS_GRAPHS.factory(spec.name) for spec in load_route_specs(Settings())}
)
