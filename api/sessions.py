"""`GET` and `DELETE /chat/sessions/{session_id}`: the caller's own session history."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from api.admission import principal_of, thread_id_for
from api.service import ChatService
from graphs.errors import NotFound

router = APIRouter(prefix="/chat/sessions", tags=["sessions"])


@router.get("/{session_id}")
async def read_session(session_id: str, request: Request) -> dict[str, Any]:
    service: ChatService = request.app.state.chat
    thread_id = thread_id_for(principal_of(request), session_id)
    snapshot = await service.graph.aget_state({"configurable": {"thread_id": thread_id}})
    history = snapshot.values.get("history") if snapshot.values else None
    if not history:
        raise NotFound(f"No session {session_id!r} for this principal (it may have expired).")
    return {"session_id": session_id, "messages": [m.model_dump() for m in history]}


@router.delete("/{session_id}", status_code=204)
async def delete_session(session_id: str, request: Request) -> Response:
    service: ChatService = request.app.state.chat
    await service.checkpointer.adelete_thread(thread_id_for(principal_of(request), session_id))
    return Response(status_code=204)
