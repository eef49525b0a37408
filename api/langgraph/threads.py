"""The LangGraph API's threads: a principal's own, each bound to the graph of its first run.

A thread's values and state are its latest checkpoint's; its history is the last
`CHECKPOINT_HISTORY` checkpoints, which a run can start again from (a branch). Deleting a
thread takes its session lock as a turn does (a running thread answers 409) and deletes its
checkpoints, its record and its runs'.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Query, Response

from api.caller import Caller
from api.langgraph.bodies import (
    HistoryRequest,
    StateAt,
    ThreadCreate,
    ThreadPatch,
    ThreadSearch,
)
from api.langgraph.served import (
    Service,
    checkpoint_config,
    forget_thread,
    graph_of,
    owned_thread,
    thread_status,
    thread_values,
)
from api.langgraph.wire import EMPTY_STATE, created_thread, state, thread
from graphs.errors import NotFound, ThreadConflict
from graphs.memory.session_lock import kept
from graphs.memory.thread_records import StoredThread
from graphs.service import GraphService

router = APIRouter(prefix="/threads", tags=["langgraph threads"])


async def rendered(service: GraphService, principal: str, stored: StoredThread) -> dict[str, Any]:
    route = graph_of(service, stored)
    status = await thread_status(route, principal, stored)
    return thread(stored, status, await thread_values(route, principal, stored))


@router.post("")
async def create_thread(body: ThreadCreate, service: Service, caller: Caller) -> dict[str, Any]:
    now = time.time()
    thread_id = str(body.thread_id or uuid.uuid4())
    created = StoredThread(thread_id, now, now, body.metadata)
    if await service.threads.create(caller.name, created):
        return created_thread(created)
    if body.if_exists == "raise":
        raise ThreadConflict(f"Thread {thread_id} already exists.")
    return await rendered(service, caller.name, await owned_thread(service, caller.name, thread_id))


@router.get("/{thread_id}")
async def get_thread(thread_id: UUID, service: Service, caller: Caller) -> dict[str, Any]:
    stored = await owned_thread(service, caller.name, str(thread_id))
    return await rendered(service, caller.name, stored)


@router.patch("/{thread_id}", response_model=None)
async def patch_thread(
    thread_id: UUID,
    body: ThreadPatch,
    service: Service,
    caller: Caller,
    prefer: Annotated[str | None, Header()] = None,
) -> dict[str, Any] | Response:
    """Merge `metadata` into the thread's (shallow, as the LangGraph server does)."""
    stored = await owned_thread(service, caller.name, str(thread_id))
    patched = stored.touched(metadata={**stored.metadata, **body.metadata})
    await service.threads.put(caller.name, patched)
    if prefer is not None and "return=minimal" in prefer:
        return Response(status_code=204)
    return await rendered(service, caller.name, patched)


@router.delete("/{thread_id}", status_code=204)
async def delete_thread(thread_id: UUID, service: Service, caller: Caller) -> Response:
    stored = await owned_thread(service, caller.name, str(thread_id))
    route = graph_of(service, stored)
    if route is None:
        deleted = await forget_thread(service, route, caller.name, stored.thread_id)
    else:
        internal = checkpoint_config(route, caller.name, stored.thread_id)["configurable"]
        held = await route.services.take_session_lock(internal["thread_id"], 0.0, "reject")
        async with kept(held):
            deleted = await forget_thread(service, route, caller.name, stored.thread_id)
    if not deleted:
        raise NotFound(f"Thread {thread_id} not found.")
    return Response(status_code=204)


def selected(stored: StoredThread, search: ThreadSearch) -> bool:
    if search.ids is not None and stored.thread_id not in {str(i) for i in search.ids}:
        return False
    wanted = search.metadata or {}
    return all(stored.metadata.get(key) == value for key, value in wanted.items())


@router.post("/search")
async def search_threads(
    search: ThreadSearch, service: Service, caller: Caller, response: Response
) -> list[dict[str, Any]]:
    """The caller's threads (no other principal's), newest update first unless `sort_by`
    says otherwise, filtered by metadata, ids and status, `limit` from `offset`; only the
    page's threads have their values read."""
    found = [t async for t in service.threads.newest_first(caller.name) if selected(t, search)]
    statuses: dict[str, str] = {}
    if search.status is not None or search.sort_by == "status":
        for stored in found:
            route = graph_of(service, stored)
            statuses[stored.thread_id] = await thread_status(route, caller.name, stored)
        if search.status is not None:
            found = [t for t in found if statuses[t.thread_id] == search.status]
    if search.sort_by is not None:
        found.sort(key=sort_key(search.sort_by, statuses), reverse=search.sort_order != "asc")
    elif search.sort_order == "asc":
        found.reverse()
    page = found[search.offset : search.offset + search.limit]
    response.headers["X-Pagination-Total"] = str(len(found))
    if search.offset + len(page) < len(found):
        response.headers["X-Pagination-Next"] = str(search.offset + len(page))
    return [await rendered(service, caller.name, stored) for stored in page]


def sort_key(sort_by: str, statuses: dict[str, str]) -> Callable[[StoredThread], Any]:
    if sort_by == "status":
        return lambda stored: statuses[stored.thread_id]
    return lambda stored: getattr(stored, sort_by)


async def thread_state(
    service: GraphService,
    principal: str,
    thread_id: str,
    subgraphs: bool = False,
    checkpoint_id: str | None = None,
) -> dict[str, Any]:
    """The thread's state at its latest checkpoint, or at `checkpoint_id` (a kept one)."""
    stored = await owned_thread(service, principal, thread_id)
    route = graph_of(service, stored)
    if route is None:
        return dict(EMPTY_STATE)
    config = checkpoint_config(route, principal, thread_id)
    if checkpoint_id is not None:
        config["configurable"]["checkpoint_id"] = checkpoint_id
    return state(await route.graph.aget_state(config, subgraphs=subgraphs), thread_id)


@router.get("/{thread_id}/state")
async def get_thread_state(
    thread_id: UUID, service: Service, caller: Caller, subgraphs: bool = Query(default=False)
) -> dict[str, Any]:
    return await thread_state(service, caller.name, str(thread_id), subgraphs)


async def state_at(
    service: GraphService, principal: str, thread_id: str, checkpoint_id: str | None
) -> dict[str, Any]:
    """The state at a checkpoint the thread keeps (its last `CHECKPOINT_HISTORY`)."""
    found = await thread_state(service, principal, thread_id, checkpoint_id=checkpoint_id)
    if checkpoint_id is not None and found["checkpoint_id"] != checkpoint_id:
        raise NotFound(
            f"Checkpoint {checkpoint_id} of thread {thread_id} not found: a thread keeps its "
            "last CHECKPOINT_HISTORY checkpoints."
        )
    return found


@router.get("/{thread_id}/state/{checkpoint_id}")
async def get_thread_state_at(
    thread_id: UUID, checkpoint_id: str, service: Service, caller: Caller
) -> dict[str, Any]:
    return await state_at(service, caller.name, str(thread_id), checkpoint_id)


@router.post("/{thread_id}/state/checkpoint")
async def post_thread_state_at(
    thread_id: UUID, body: StateAt, service: Service, caller: Caller
) -> dict[str, Any]:
    """`RemoteGraph.get_state`: the state at `checkpoint` (its `checkpoint_id`, if any)."""
    wanted = body.checkpoint.get("checkpoint_id")
    return await state_at(service, caller.name, str(thread_id), wanted and str(wanted))


@router.post("/{thread_id}/history")
async def thread_history(
    thread_id: UUID, body: HistoryRequest, service: Service, caller: Caller
) -> list[dict[str, Any]]:
    """The thread's kept checkpoints (its last `CHECKPOINT_HISTORY`), newest first: `limit` of
    them, those `before` a checkpoint, those whose metadata holds `metadata`."""
    stored = await owned_thread(service, caller.name, str(thread_id))
    route = graph_of(service, stored)
    if route is None:
        return []
    config = checkpoint_config(route, caller.name, stored.thread_id)
    before = body.before
    if isinstance(before, str):
        before = {"configurable": {"checkpoint_id": before}}
    elif isinstance(before, dict) and "configurable" not in before:
        before = {"configurable": before}
    states = route.graph.aget_state_history(
        config, filter=body.metadata, before=before, limit=body.limit
    )
    return [state(snapshot, stored.thread_id) async for snapshot in states]
