"""`/admin/principals/{principal}/threads`: a principal's sessions and threads on every route
(the chat's and the routes' sessions, the LangGraph API's threads), one's history, and its
deletion, each read and deletion an audit line (`api/admin/audit.py`). A thread is named by
its route and its id on that route, as its owner names it.

Listing reads the checkpointer's thread ids (on Redis, a SCAN for the principal's checkpoint
keys: an operator's action, never a request's path, and no per-turn index to keep).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Request, Response
from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver

from api.admin.audit import audited
from api.caller import Admin
from graphs.errors import NotFound
from graphs.graph_routes import GraphRoute
from graphs.identity import PRINCIPAL_PATTERN, SESSION_ID_PATTERN, thread_id
from graphs.memory.checkpoint import ThreadListing
from graphs.memory.session_lock import kept
from graphs.routes import BUILT_IN_CHAT
from graphs.service import GraphService, RouteGraphs

router = APIRouter(prefix="/admin/principals/{principal}/threads", tags=["admin"])
HISTORY_CHANNELS = ("history", "messages")  # the chat's history, a team graph's messages

PrincipalName = Path(pattern=PRINCIPAL_PATTERN.pattern)
ThreadName = Path(pattern=SESSION_ID_PATTERN.pattern)


def route_of(service: GraphService, route: str) -> RouteGraphs | GraphRoute:
    found = service.routes.get(route) or service.graph_routes.get(route)
    if found is None:
        raise NotFound(f"No route {route!r}.")
    return found


def saver_of(route: RouteGraphs | GraphRoute) -> BaseCheckpointSaver[Any] | None:
    saver = route.graph.checkpointer
    return saver if isinstance(saver, BaseCheckpointSaver) else None


def located(
    service: GraphService, principal: str, route: str, thread: str
) -> tuple[RouteGraphs | GraphRoute, str, BaseCheckpointSaver[Any] | None]:
    """The route a principal's thread is on, its checkpoint thread id, and its checkpointer."""
    served = route_of(service, route)
    internal = thread_id(principal, thread, served.services.thread_route)
    return served, internal, saver_of(served)


def named(principal: str, internal: str) -> dict[str, str]:
    """A checkpoint thread id as its route and the owner's id on it."""
    parts = internal.removeprefix(f"{principal}:").split(":")
    route, thread = (BUILT_IN_CHAT.name, parts[0]) if len(parts) == 1 else (parts[0], parts[1])
    return {"route": route, "thread": thread}


def latest(internal: str) -> RunnableConfig:
    return {"configurable": {"thread_id": internal, "checkpoint_ns": ""}}


def listings(service: GraphService) -> list[ThreadListing]:
    """Every route's checkpointer, each once (embedded, the chains' sessions and the graphs'
    threads are two stores; on Redis, one key space)."""
    routes: list[RouteGraphs | GraphRoute] = [*service.routes.values()]
    routes += service.graph_routes.values()
    savers: dict[int, ThreadListing] = {}
    for route in routes:
        saver = saver_of(route)
        if isinstance(saver, ThreadListing):
            savers[id(saver)] = saver
    return list(savers.values())


@router.get("")
async def list_threads(
    admin: Admin, request: Request, principal: str = PrincipalName
) -> dict[str, Any]:
    service: GraphService = request.app.state.graphs
    ids = {i for saver in listings(service) for i in await saver.athread_ids(f"{principal}:")}
    threads = sorted(
        (named(principal, internal) for internal in ids), key=lambda t: tuple(t.values())
    )
    return {"principal": principal, "threads": threads}


@router.get("/{route}/{thread}")
async def read_thread(
    admin: Admin,
    request: Request,
    route: str,
    principal: str = PrincipalName,
    thread: str = ThreadName,
) -> dict[str, Any]:
    """The thread's messages (the chat's history, or a graph's `messages`)."""
    service: GraphService = request.app.state.graphs
    _, internal, saver = located(service, principal, route, thread)
    saved = None if saver is None else await saver.aget_tuple(latest(internal))
    if saved is None:
        raise NotFound(f"No thread {thread!r} of {principal!r} on {route!r}.")
    audited(admin, "read thread", f"{route}/{thread}", principal=principal)
    values = saved.checkpoint["channel_values"]
    messages: list[BaseMessage] = next(
        (values[name] for name in HISTORY_CHANNELS if name in values), []
    )
    return {
        "principal": principal,
        "route": route,
        "thread": thread,
        "messages": [message.model_dump() for message in messages],
    }


@router.delete("/{route}/{thread}", status_code=204)
async def delete_thread(
    admin: Admin,
    request: Request,
    route: str,
    principal: str = PrincipalName,
    thread: str = ThreadName,
) -> Response:
    """Delete the thread as its owner would: under its session lock, with its LangGraph API
    record and runs when it has them."""
    service: GraphService = request.app.state.graphs
    served, internal, saver = located(service, principal, route, thread)
    async with kept(await served.services.take_session_lock(internal)):
        found = saver is not None and await saver.aget_tuple(latest(internal)) is not None
        if saver is not None and found:
            await saver.adelete_thread(internal)
        recorded = route in service.graph_routes and await service.threads.delete(principal, thread)
    if not (found or recorded):
        raise NotFound(f"No thread {thread!r} of {principal!r} on {route!r}.")
    audited(admin, "deleted thread", f"{route}/{thread}", principal=principal)
    return Response(status_code=204)
