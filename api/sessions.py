"""`GET` and `DELETE /chat/sessions/{session_id}`: the caller's own session history."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from langchain_core.runnables import RunnableConfig

from api.caller import Caller
from api.service import ChatService
from graphs.errors import NotFound
from graphs.identity import thread_id

router = APIRouter(prefix="/chat/sessions", tags=["sessions"])


@router.get("/{session_id}")
async def read_session(session_id: str, caller: Caller, request: Request) -> dict[str, Any]:
    service: ChatService = request.app.state.chat
    thread = thread_id(caller.name, session_id)
    snapshot = await service.graph.aget_state({"configurable": {"thread_id": thread}})
    history = snapshot.values.get("history") if snapshot.values else None
    if not history:
        raise NotFound(f"No session {session_id!r} for this principal (it may have expired).")
    return {"session_id": session_id, "messages": [m.model_dump() for m in history]}


@router.delete("/{session_id}", status_code=204)
async def delete_session(session_id: str, caller: Caller, request: Request) -> Response:
    """Clear the caller's session; 404 when it has none by that id (whoever else may)."""
    service: ChatService = request.app.state.chat
    thread = thread_id(caller.name, session_id)
    config: RunnableConfig = {"configurable": {"thread_id": thread}}
    if await service.checkpointer.aget_tuple(config) is None:
        raise NotFound(f"No session {session_id!r} for this principal (it may have expired).")
    await service.checkpointer.adelete_thread(thread)
    return Response(status_code=204)
