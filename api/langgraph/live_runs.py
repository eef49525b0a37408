"""Stopping a LangGraph API run wherever it runs: this worker keeps its own runs by id and
stops them at once; a run on another worker or pod is asked through Redis
(`graphs/memory/thread_records.py`), and stops within `RUN_CANCEL_POLL`. `/cancel` and the
`interrupt` and `rollback` strategies (a new run on a busy thread stops the running one) both
stop runs here."""

from __future__ import annotations

import asyncio
from typing import Protocol

from fastapi import Request

from graphs.memory.thread_records import CancelAction, StoredRun
from graphs.service import GraphService


class StoppableRun(Protocol):
    def stop(self, action: CancelAction = "interrupt") -> None: ...

    async def hand_back(self) -> None: ...

    @property
    def task(self) -> asyncio.Task[None]: ...


class LiveRuns:
    """The runs this worker is running, by id."""

    def __init__(self) -> None:
        self._runs: dict[str, StoppableRun] = {}

    def add(self, run_id: str, run: StoppableRun) -> None:
        self._runs[run_id] = run
        run.task.add_done_callback(lambda _: self._runs.pop(run_id, None))

    def task_of(self, run_id: str) -> asyncio.Task[None] | None:
        run = self._runs.get(run_id)
        return None if run is None else run.task

    def stop(self, run_id: str, action: CancelAction) -> asyncio.Task[None] | None:
        """Stop the run if it runs here; its task, to wait for."""
        run = self._runs.get(run_id)
        if run is None:
            return None
        run.stop(action)
        return run.task

    async def hand_back_all(self) -> None:
        """This worker stops: its background runs go to others (`RunningRun.hand_back`)."""
        await asyncio.gather(*(run.hand_back() for run in list(self._runs.values())))


def live_runs(request: Request) -> LiveRuns:
    runs: LiveRuns = request.app.state.live_runs
    return runs


async def stop_run(
    request: Request, service: GraphService, principal: str, run_id: str, action: CancelAction
) -> asyncio.Task[None] | None:
    """Stop the run: here at once (its task, to wait for), or ask the worker that runs it."""
    task = live_runs(request).stop(run_id, action)
    if task is None:
        await service.threads.ask_to_cancel(principal, run_id, action)
    return task


async def stop_thread_runs(
    request: Request, service: GraphService, principal: str, thread: str, action: CancelAction
) -> None:
    """Stop every run of the thread that is running (the one holding its session lock)."""
    for run in await service.threads.runs_of(principal, thread):
        if run.status in ("pending", "running"):
            await stop_run(request, service, principal, run.run_id, action)


async def run_ended(service: GraphService, principal: str, run_id: str) -> StoredRun | None:
    """Another worker's run, once it has ended (or its record is gone): its record, read every
    `RUN_CANCEL_POLL` seconds (a run ends within its route's `REQUEST_TIMEOUT`)."""
    while True:
        stored = await service.threads.get_run(principal, run_id)
        if stored is None or stored.status not in ("pending", "running"):
            return stored
        route = service.graph_routes.get(stored.assistant_id)
        await asyncio.sleep(route.services.settings.run_cancel_poll if route else 0.5)
