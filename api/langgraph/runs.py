"""The LangGraph API's runs: on a thread (`/threads/{id}/runs/...`) or stateless (`/runs/...`),
streamed (`/stream`, SSE: `api/langgraph/events.py`) or awaited (`/wait`: the run's last
values, or `{"__error__": ...}` with 200, as the LangGraph server answers).

A run is admitted before any byte of the response (`api/langgraph/run_admission.py`), then
runs in a task of its own that feeds the response, so it can be cancelled when the client
leaves (`on_disconnect=cancel`) or asks (`/cancel`), whatever the response is doing. Its
record is final (success, error, interrupted) before the response ends: the Python client
asks for a run that is still `running` when its stream closes, and follows it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from redis.exceptions import RedisClusterException, RedisError

from api.admitted_run import cancel_once, cancel_when_client_goes, session_turn
from api.caller import Caller
from api.langgraph.bodies import RunCreate
from api.langgraph.events import RunEvents, frame, native_modes
from api.langgraph.run_admission import AdmittedRun, admit_run
from api.langgraph.served import Service, owned_thread
from api.langgraph.wire import dumps, run
from graphs.errors import GraphgateError, NotFound
from graphs.graph_run import stream_graph_run
from graphs.memory.thread_records import RunStatus, ThreadOutcome
from graphs.service import GraphService
from graphs.store.redis_client import REDIS_FAILURES, store_unavailable
from middleware.error_responses import langgraph_run_error
from middleware.request_context import request_context

logger = logging.getLogger("graphgate")
router = APIRouter(tags=["langgraph runs"])
DONE = object()


class LiveRuns:
    """The runs this worker is running, by id: what `/cancel` can stop here."""

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def add(self, run_id: str, task: asyncio.Task[None]) -> None:
        self._tasks[run_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(run_id, None))

    def cancel(self, run_id: str) -> asyncio.Task[None] | None:
        """Cancel the run; its task, to wait for, if it runs here."""
        task = self._tasks.get(run_id)
        if task is not None:
            cancel_once(task)
        return task


def live_runs(request: Request) -> LiveRuns:
    runs: LiveRuns = request.app.state.live_runs
    return runs


class RunningRun:
    """An admitted run in its own task: its stream parts become events as they come, and its
    records are settled when it ends, however it ends, before its events end."""

    def __init__(
        self, request: Request, service: GraphService, admitted: AdmittedRun, body: RunCreate
    ) -> None:
        self.admitted = admitted
        self.events = RunEvents(body.stream_modes, body.stream_subgraphs)
        self.status: RunStatus = "running"
        self.failure: dict[str, Any] | None = None
        self._service = service
        self._modes = native_modes(body.stream_modes)
        self._subgraphs = body.stream_subgraphs
        self._with_events = "events" in body.stream_modes
        self._context = request_context(request.scope)
        self._context.writes_own_errors = True
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._settled = False
        self._task = asyncio.create_task(self._run())
        # However the task ends (even cancelled before it began), its events end.
        self._task.add_done_callback(lambda _: self._queue.put_nowait(DONE))
        live_runs(request).add(admitted.record.run_id, self._task)
        cancel_when_client_goes(self._task)
        if service.redis is not None and admitted.thread is not None:
            watch = asyncio.create_task(self._cancel_when_asked())
            self._task.add_done_callback(lambda _: watch.cancel())

    async def _cancel_when_asked(self) -> None:
        """Cancel the run when a `/cancel` that reached another worker or pod asks for it."""
        admitted = self.admitted
        every = admitted.route.services.settings.run_cancel_poll
        # The request is in Redis, where no event reaches this process: it is read.
        while not await self._service.threads.cancel_asked(  # noqa: ASYNC110
            admitted.principal, admitted.record.run_id
        ):
            await asyncio.sleep(every)
        cancel_once(self._task)

    async def _run(self) -> None:
        try:
            await self._stream()
            self.status = "success"
        except asyncio.CancelledError:
            self.status = "interrupted"
            raise
        except GraphgateError as exc:
            self._fail(exc)
        except (RedisError, RedisClusterException) as exc:
            self._fail(store_unavailable(exc))
        except Exception:
            logger.exception("a LangGraph API run failed")
            self._fail(None)
        finally:
            await self._settle_once()

    async def _stream(self) -> None:
        route = self.admitted.route
        saver = route.graph.checkpointer
        async with session_turn(self.admitted.config, route.services, saver) as config:
            async for part in stream_graph_run(
                route,
                self.admitted.graph_input,
                config,
                self._modes,
                self._subgraphs,
                self._with_events,
            ):
                for event in self.events.of(part):
                    self._queue.put_nowait(event)

    def _fail(self, error: GraphgateError | None) -> None:
        self.status = "error"
        self._context.stream_failure = error
        self.failure = langgraph_run_error(error, self._context.trace_id)

    async def _settle_once(self) -> None:
        """Settle the run's records once: when its task ends, or (a task cancelled before it
        began) when its events have ended. A store that fails here is logged: the run's own
        outcome has been told."""
        if self._settled:
            return
        self._settled = True
        if self.status == "running":
            self.status = "interrupted"
        try:
            await asyncio.shield(self._settle())
        except REDIS_FAILURES as exc:
            logger.warning("recording a LangGraph API run's end failed: %s", type(exc).__name__)

    async def _settle(self) -> None:
        """The run's record and its thread's outcome (a stateless run has neither)."""
        admitted = self.admitted
        if admitted.thread is None:
            return
        outcome: ThreadOutcome = "interrupted" if self.events.interrupts else "idle"
        error = None
        if self.failure is not None:
            outcome, error = "error", str(self.failure["message"])
        thread = admitted.thread.touched(outcome=outcome, error=error)
        await self._service.threads.put(admitted.principal, thread)
        await self._service.threads.put_run(admitted.principal, admitted.record.moved(self.status))

    async def events_as_they_come(self) -> AsyncIterator[tuple[str, Any]]:
        """The run's events; a failure ends them with an `error` event."""
        while (event := await self._queue.get()) is not DONE:
            yield event
        await self._settle_once()
        if self.failure is not None:
            yield "error", self.failure

    def stop(self) -> None:
        cancel_once(self._task)


def stream_response(running: RunningRun) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        try:
            yield frame("metadata", {"run_id": running.admitted.record.run_id, "attempt": 1})
            async for name, data in running.events_as_they_come():
                yield frame(name, data)
        finally:
            running.stop()  # the client left mid-stream

    headers = {
        "Cache-Control": "no-store",
        "X-Accel-Buffering": "no",
        "Content-Location": running.admitted.location,
    }
    return StreamingResponse(body(), media_type="text/event-stream", headers=headers)


async def wait_response(running: RunningRun) -> Response:
    try:
        async for _ in running.events_as_they_come():
            pass
    finally:
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
    return stream_response(RunningRun(request, service, admitted, body))


@router.post("/threads/{thread_id}/runs/wait")
async def wait_thread_run(
    thread_id: UUID, body: RunCreate, request: Request, service: Service, caller: Caller
) -> Response:
    """A run on the thread; the answer is its final values."""
    admitted = await admit_run(request, service, caller, body, str(thread_id))
    return await wait_response(RunningRun(request, service, admitted, body))


@router.post("/runs/stream", response_class=StreamingResponse)
async def stream_stateless_run(
    body: RunCreate, request: Request, service: Service, caller: Caller
) -> StreamingResponse:
    """A run on no thread (nothing is kept), its events streamed as SSE."""
    admitted = await admit_run(request, service, caller, body, None)
    return stream_response(RunningRun(request, service, admitted, body))


@router.post("/runs/wait")
async def wait_stateless_run(
    body: RunCreate, request: Request, service: Service, caller: Caller
) -> Response:
    """A run on no thread; the answer is its final values."""
    admitted = await admit_run(request, service, caller, body, None)
    return await wait_response(RunningRun(request, service, admitted, body))


@router.get("/threads/{thread_id}/runs/{run_id}")
async def get_run(
    thread_id: UUID, run_id: UUID, service: Service, caller: Caller
) -> dict[str, Any]:
    await owned_thread(service, caller.name, str(thread_id))
    stored = await service.threads.get_run(caller.name, str(run_id))
    if stored is None or stored.thread_id != str(thread_id):
        raise NotFound(f"Run {run_id} of thread {thread_id} not found.")
    return run(stored)


@router.post("/threads/{thread_id}/runs/{run_id}/cancel", status_code=202)
async def cancel_run(
    thread_id: UUID,
    run_id: UUID,
    request: Request,
    service: Service,
    caller: Caller,
    wait: bool = Query(default=False),
    action: str = Query(default="interrupt", pattern="^(interrupt|rollback)$"),
) -> Response:
    """Stop a run (it ends `interrupted`; its progress is not kept): at once on this worker,
    within `RUN_CANCEL_POLL` on another; with `wait`, answer with the run once it has
    stopped."""
    found = await get_run(thread_id, run_id, service, caller)
    task = live_runs(request).cancel(str(run_id))
    if task is None and found["status"] not in ("pending", "running"):
        raise NotFound(f"Run {run_id} is not running; nothing to cancel.")
    if task is None:  # another worker or pod runs it
        await service.threads.ask_to_cancel(caller.name, str(run_id))
    if not wait:
        return Response(status_code=202)
    if task is not None:
        await asyncio.wait([task])
    else:
        await run_ended(service, caller.name, str(run_id))
    found = await get_run(thread_id, run_id, service, caller)
    return Response(dumps(found), media_type="application/json")


async def run_ended(service: GraphService, principal: str, run_id: str) -> None:
    """Until another worker's run has ended: its record, read every `RUN_CANCEL_POLL` seconds
    (a run ends within its route's `REQUEST_TIMEOUT`)."""
    while True:
        stored = await service.threads.get_run(principal, run_id)
        if stored is None or stored.status not in ("pending", "running"):
            return
        route = service.graph_routes.get(stored.assistant_id)
        await asyncio.sleep(route.services.settings.run_cancel_poll if route else 0.5)
