"""`GET` and `DELETE <route>/sessions/{session_id}`: the caller's own session history."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from langchain_core.runnables import RunnableConfig

from api.caller import Caller
from graphs.errors import NotFound
from graphs.identity import thread_id
from graphs.memory.session_lock import kept
from graphs.service import GraphService, RouteGraphs


def session_routes(path: str, graphs: Callable[[], RouteGraphs]) -> APIRouter:
    """The session routes of the route at `path`."""
    router = APIRouter(prefix=f"{path}/sessions", tags=["sessions"])

    def thread_of(caller: Caller, session_id: str) -> RunnableConfig:
        thread = thread_id(caller.name, session_id, graphs().services.thread_route)
        return {"configurable": {"thread_id": thread}}

    @router.get("/{session_id}")
    async def read_session(session_id: str, caller: Caller) -> dict[str, Any]:
        snapshot = await graphs().graph.aget_state(thread_of(caller, session_id))
        history = snapshot.values.get("history") if snapshot.values else None
        if not history:
            raise NotFound(f"No session {session_id!r} for this principal (it may have expired).")
        return {"session_id": session_id, "messages": [m.model_dump() for m in history]}

    @router.delete("/{session_id}", status_code=204)
    async def delete_session(session_id: str, caller: Caller, request: Request) -> Response:
        """Clear the caller's session; 404 when it has none by that id (whoever else may). It
        takes the session's lock as a turn does: a turn running meanwhile would write the
        session back."""
        service: GraphService = request.app.state.graphs
        config = thread_of(caller, session_id)
        thread = config["configurable"]["thread_id"]
        async with kept(await graphs().services.take_session_lock(thread)):
            checkpointer = service.checkpointer
            if checkpointer is None or await checkpointer.aget_tuple(config) is None:
                raise NotFound(
                    f"No session {session_id!r} for this principal (it may have expired)."
                )
            await checkpointer.adelete_thread(thread)
        return Response(status_code=204)

    return router
