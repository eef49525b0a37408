"""The LangGraph API's runs: on a thread (`/threads/{id}/runs/...`) or stateless (`/runs/...`),
streamed (`/stream`, SSE: `api/langgraph/events.py`), awaited (`/wait`: the run's last values,
or `{"__error__": ...}` with 200, as the LangGraph server answers) or in the background (the
answer is the run's record; `/join` waits for it, `/stream` rejoins a resumable one); a
thread's runs, a run's record; cancel. A run is admitted before any byte of the response
(`api/langgraph/run_admission.py`), then runs in a task of its own
(`api/langgraph/running_run.py`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from api.admitted_run import cancel_when_client_goes
from api.caller import Caller
from api.langgraph.background_lease import BackgroundLease
from api.langgraph.bodies import RunCreate
from api.langgraph.events import frame, run_metadata, written_frame
from api.langgraph.live_runs import live_runs, run_ended, stop_run
from api.langgraph.run_admission import AdmittedRun, admit_run
from api.langgraph.running_run import RunningRun
from api.langgraph.served import Service, graph_of, owned_thread, thread_values
from api.langgraph.wire import dumps, run
from graphs.errors import NotFound
from graphs.memory.thread_records import CancelAction, RunStatus, StoredRun
from graphs.service import GraphService
from middleware.request_context import request_context

router = APIRouter(tags=["langgraph runs"])


def start_run(
    request: Request,
    service: GraphService,
    admitted: AdmittedRun,
    body: RunCreate,
    *,
    background: bool = False,
) -> RunningRun:
    """Start the admitted run of `request`: cancelled if its client leaves, unless it goes on
    alone (`on_disconnect=continue`, or a background run, which is owned under a lease)."""
    context = request_context(request.scope)
    alone = background or body.on_disconnect == "continue"
    holdings = context.hand_over() if alone else None
    lease = None
    if background:
        every = admitted.route.services.settings.run_lease / 3
        lease = BackgroundLease(service.leases, admitted.principal, admitted.record.run_id, every)
    running = RunningRun(
        service,
        admitted,
        body,
        context=context,
        live=live_runs(request),
        holdings=holdings,
        lease=lease,
    )
    if not alone:
        cancel_when_client_goes(running.task)
    return running


STREAM_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def stream_response(running: RunningRun) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        try:
            yield frame("metadata", run_metadata(running.admitted.record.run_id))
            async for name, data, event_id in running.events_as_they_come():
                yield written_frame(name, data, event_id)
        finally:
            if not running.goes_on_alone:
                running.stop()  # the client left mid-stream

    headers = {**STREAM_HEADERS, "Content-Location": running.admitted.location}
    if running.resumable:
        # Where the Python client rejoins the run when its connection breaks.
        headers["Location"] = f"{running.admitted.location}/stream"
    return StreamingResponse(body(), media_type="text/event-stream", headers=headers)


async def wait_response(running: RunningRun) -> Response:
    try:
        async for _ in running.events_as_they_come():
            pass
    finally:
        if not running.goes_on_alone:
            running.stop()
    result = running.events.result()
    if running.failure is not None:
        result = {"__error__": running.failure}
    headers = {"Content-Location": running.admitted.location}
    return Response(dumps(result), media_type="application/json", headers=headers)


@router.post("/threads/{thread_id}/runs/stream", response_class=StreamingResponse)
async def stream_thread_run(
    thread_id: UUID, body: RunCreate, request: Request, service: Service, caller: Caller
) -> StreamingResponse:
    """A run on the thread, its events streamed as SSE."""
    admitted = await admit_run(request, service, caller, body, str(thread_id))
    return stream_response(start_run(request, service, admitted, body))


@router.post("/threads/{thread_id}/runs/wait")
async def wait_thread_run(
    thread_id: UUID, body: RunCreate, request: Request, service: Service, caller: Caller
) -> Response:
    """A run on the thread; the answer is its final values."""
    admitted = await admit_run(request, service, caller, body, str(thread_id))
    return await wait_response(start_run(request, service, admitted, body))


@router.post("/runs/stream", response_class=StreamingResponse)
async def stream_stateless_run(
    body: RunCreate, request: Request, service: Service, caller: Caller
) -> StreamingResponse:
    """A run on no thread (nothing is kept), its events streamed as SSE."""
    admitted = await admit_run(request, service, caller, body, None)
    return stream_response(start_run(request, service, admitted, body))


@router.post("/runs/wait")
async def wait_stateless_run(
    body: RunCreate, request: Request, service: Service, caller: Caller
) -> Response:
    """A run on no thread; the answer is its final values."""
    admitted = await admit_run(request, service, caller, body, None)
    return await wait_response(start_run(request, service, admitted, body))


@router.post("/threads/{thread_id}/runs")
async def create_thread_run(
    thread_id: UUID, body: RunCreate, request: Request, service: Service, caller: Caller
) -> Response:
    """A background run on the thread: the answer is its record, at once; the run goes on, on
    this worker or (if it dies) another, whoever waits for it (`/join`)."""
    admitted = await admit_run(request, service, caller, body, str(thread_id), background=True)
    start_run(request, service, admitted, body, background=True)
    headers = {"Content-Location": admitted.location}
    return Response(dumps(run(admitted.record)), media_type="application/json", headers=headers)


@router.post("/runs")
async def create_stateless_run(
    body: RunCreate, request: Request, service: Service, caller: Caller
) -> Response:
    """A background run on a thread of its own, deleted when the run ends unless
    `on_completion` is `keep`."""
    thread = str(uuid.uuid4())
    body = body.model_copy(update={"if_not_exists": "create"})
    admitted = await admit_run(request, service, caller, body, thread, background=True)
    running = start_run(request, service, admitted, body, background=True)
    if body.on_completion != "keep":
        running.then_forget_thread()
    headers = {"Content-Location": admitted.location}
    return Response(dumps(run(admitted.record)), media_type="application/json", headers=headers)


@router.get("/threads/{thread_id}/runs")
async def list_runs(
    thread_id: UUID,
    service: Service,
    caller: Caller,
    limit: int = Query(default=10, ge=1, le=1000),
    offset: int = Query(default=0, ge=0),
    status: RunStatus | None = None,
) -> list[dict[str, Any]]:
    """The thread's runs, newest first."""
    await owned_thread(service, caller.name, str(thread_id))
    found = await service.threads.runs_of(caller.name, str(thread_id))
    found = [stored for stored in found if status is None or stored.status == status]
    found.sort(key=lambda stored: stored.created_at, reverse=True)
    return [run(stored) for stored in found[offset : offset + limit]]


@router.get("/threads/{thread_id}/runs/{run_id}/join")
async def join_run(
    thread_id: UUID, run_id: UUID, request: Request, service: Service, caller: Caller
) -> Response:
    """Wait for the run to end, wherever it runs; the answer is its thread's values then (a
    stateless run's own, its thread being gone)."""
    await owned_run(service, caller.name, thread_id, run_id)
    task = live_runs(request).task_of(str(run_id))
    if task is not None:
        await asyncio.wait([task])
    ended = await run_ended(service, caller.name, str(run_id))
    if ended is not None and ended.output is not None:
        return Response(dumps(ended.output), media_type="application/json")
    stored = await owned_thread(service, caller.name, str(thread_id))
    values = await thread_values(graph_of(service, stored), caller.name, stored)
    return Response(dumps(values or {}), media_type="application/json")


async def owned_run(
    service: GraphService, principal: str, thread_id: UUID, run_id: UUID
) -> StoredRun:
    """The principal's run of the thread (a stateless run's thread may be gone)."""
    stored = await service.threads.get_run(principal, str(run_id))
    if stored is None or stored.thread_id != str(thread_id):
        raise NotFound(f"Run {run_id} of thread {thread_id} not found.")
    return stored


@router.get("/threads/{thread_id}/runs/{run_id}")
async def get_run(
    thread_id: UUID, run_id: UUID, service: Service, caller: Caller
) -> dict[str, Any]:
    return run(await owned_run(service, caller.name, thread_id, run_id))


@router.get("/threads/{thread_id}/runs/{run_id}/stream", response_class=StreamingResponse)
async def join_run_stream(
    thread_id: UUID,
    run_id: UUID,
    service: Service,
    caller: Caller,
    last_event_id: Annotated[str | None, Header(max_length=64)] = None,
) -> StreamingResponse:
    """Rejoin a resumable run, on any worker: its events after `Last-Event-ID` (all of them
    without it), then the new ones as they come, until it ends."""
    await owned_run(service, caller.name, thread_id, run_id)
    if not await service.run_events.exists(caller.name, str(run_id)):
        raise NotFound(
            f"The events of run {run_id} are not kept: it was not started with "
            "stream_resumable, or they have expired (RUN_EVENTS_TTL)."
        )

    async def body() -> AsyncIterator[bytes]:
        logged = service.run_events.read(caller.name, str(run_id), last_event_id)
        async for event_id, name, data in logged:
            yield written_frame(name, data, event_id)

    return StreamingResponse(body(), media_type="text/event-stream", headers=STREAM_HEADERS)


@router.post("/threads/{thread_id}/runs/{run_id}/cancel", status_code=202)
async def cancel_run(
    thread_id: UUID,
    run_id: UUID,
    request: Request,
    service: Service,
    caller: Caller,
    wait: bool = Query(default=False),
    action: CancelAction = "interrupt",
) -> Response:
    """Stop a run, at once on this worker, within `RUN_CANCEL_POLL` on another: it ends
    `interrupted` with what it did kept (`action=interrupt`), or leaves no trace
    (`rollback`); with `wait`, answer with the run once it has stopped."""
    found = await get_run(thread_id, run_id, service, caller)
    if found["status"] not in ("pending", "running"):
        raise NotFound(f"Run {run_id} is not running; nothing to cancel.")
    task = await stop_run(request, service, caller.name, str(run_id), action)
    if not wait:
        return Response(status_code=202)
    if task is not None:
        await asyncio.wait([task])
    await run_ended(service, caller.name, str(run_id))
    stored = await service.threads.get_run(caller.name, str(run_id))
    if stored is None:  # rolled back: no trace of it
        return Response(status_code=204)
    return Response(dumps(run(stored)), media_type="application/json")
