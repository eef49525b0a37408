"""What the LangGraph API's endpoints look up: the graph service, an assistant's graph route,
and a principal's own thread (another principal's id finds nothing: 404, as an unknown one)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver

from api.langgraph.wire import assistant_uuid
from graphs.errors import NotFound
from graphs.graph_routes import GraphRoute
from graphs.identity import thread_id
from graphs.memory.thread_records import StoredThread
from graphs.service import GraphService


def graph_service(request: Request) -> GraphService:
    service: GraphService = request.app.state.graphs
    return service


Service = Annotated[GraphService, Depends(graph_service)]


def route_of(service: GraphService, assistant_id: str) -> GraphRoute:
    """The graph route an assistant id names: the route's name, or the LangGraph server's
    uuid5 of it."""
    for name, route in service.graph_routes.items():
        if assistant_id in (name, assistant_uuid(name)):
            return route
    raise NotFound(f"Assistant {assistant_id!r} not found.")


async def owned_thread(service: GraphService, principal: str, thread: str) -> StoredThread:
    stored = await service.threads.get(principal, thread)
    if stored is None:
        raise NotFound(f"Thread {thread} not found.")
    return stored


def graph_of(service: GraphService, stored: StoredThread) -> GraphRoute | None:
    """The graph route the thread's first run bound it to (None before its first run, or when
    the route file no longer has it)."""
    graph_id = stored.metadata.get("graph_id")
    return service.graph_routes.get(graph_id) if isinstance(graph_id, str) else None


def checkpoint_config(route: GraphRoute, principal: str, thread: str) -> RunnableConfig:
    """The config that reads the thread's checkpoint: graphgate's thread id
    `<principal>:<route>:<thread>` (`graphs/identity.py`)."""
    return {"configurable": {"thread_id": thread_id(principal, thread, route.spec.thread_route)}}


async def thread_status(route: GraphRoute | None, principal: str, stored: StoredThread) -> str:
    """`busy` while a run holds the thread's session lock (a worker that died mid-run leaves
    no busy thread behind: its lease lapses), else its last run's outcome."""
    if route is not None:
        internal = checkpoint_config(route, principal, stored.thread_id)["configurable"]
        if await route.services.session_locks.is_held(internal["thread_id"]):
            return "busy"
    return stored.outcome


async def thread_values(route: GraphRoute | None, principal: str, stored: StoredThread) -> Any:
    if route is None:
        return None
    snapshot = await route.graph.aget_state(checkpoint_config(route, principal, stored.thread_id))
    return snapshot.values if snapshot.values else None


async def forget_thread(
    service: GraphService, route: GraphRoute | None, principal: str, thread: str
) -> bool:
    """Delete the thread's checkpoint and records (its runs' too); whether it had a record.
    The caller holds the thread's session lock."""
    saver = route.graph.checkpointer if route is not None else None
    if route is not None and isinstance(saver, BaseCheckpointSaver):
        internal = checkpoint_config(route, principal, thread)["configurable"]
        await saver.adelete_thread(internal["thread_id"])
    return await service.threads.delete(principal, thread)
