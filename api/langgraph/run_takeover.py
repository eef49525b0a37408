"""Background runs whose worker died, finished by another worker (their leases:
`graphs/memory/run_leases.py`).

Every worker looks for lapsed leases every third of `RUN_LEASE`. One it claims is run again
from its thread's last checkpoint: once the dead worker's session lock has lapsed too (within
`SESSION_LOCK_LEASE`), the run's record is read again (a run that has ended meanwhile is left
alone), and the graph continues from the checkpoint its last finished step wrote, or, if it
wrote none, starts again from what the run was asked. A stopping worker hands its background
runs back at once, so another takes them over without waiting for their leases to lapse.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator

from fastapi import FastAPI
from langgraph.checkpoint.base import BaseCheckpointSaver

from api.langgraph.background_lease import BackgroundLease, worker_id
from api.langgraph.bodies import RunCreate
from api.langgraph.live_runs import LiveRuns
from api.langgraph.run_admission import AdmittedRun, resumed_config
from api.langgraph.running_run import RunningRun
from api.langgraph.served import checkpoint_config
from graphs.graph_routes import GraphRoute
from graphs.memory.session_lock import HeldLock
from graphs.memory.thread_records import StoredRun, StoredThread
from graphs.service import GraphService
from graphs.store.redis_client import REDIS_FAILURES
from middleware.request_context import Holdings, RequestContext

logger = logging.getLogger("graphgate")


@contextlib.asynccontextmanager
async def taking_over_runs(app: FastAPI) -> AsyncIterator[None]:
    """While the app serves: take over the background runs of dead workers; at its end, hand
    this worker's own back."""
    service: GraphService = app.state.graphs
    live: LiveRuns = app.state.live_runs
    routes = list(service.graph_routes.values())
    if service.redis is None or not routes:
        yield
        return
    lease = routes[0].services.settings.run_lease
    sweeper = asyncio.create_task(sweep(service, live, lease / 3))
    try:
        yield
    finally:
        sweeper.cancel()
        await live.hand_back_all()


async def sweep(service: GraphService, live: LiveRuns, every: float) -> None:
    taking: set[asyncio.Task[None]] = set()
    while True:
        await asyncio.sleep(every)
        try:
            while (claimed := await service.leases.claim_lapsed(worker_id())) is not None:
                task = asyncio.create_task(take_over(service, live, *claimed, every))
                taking.add(task)
                task.add_done_callback(taking.discard)
        except REDIS_FAILURES as exc:  # the next sweep tries again
            logger.warning("looking for lapsed background runs failed: %s", type(exc).__name__)


async def take_over(
    service: GraphService, live: LiveRuns, principal: str, run_id: str, every: float
) -> None:
    """Run a claimed run again, or let it go if there is nothing left to run."""
    lease = BackgroundLease(service.leases, principal, run_id, every)
    waiting = asyncio.current_task()
    assert waiting is not None
    lease.keep(waiting.cancel)
    try:
        found = await runnable(service, principal, run_id)
        if found is None:
            await lease.end()
            return
        stored, route, _ = found
        held = await thread_lock(route, principal, stored)
        if held is None:  # still busy: the lease lapses and the run is claimed again
            lease.stop_renewing()
            return
        await resume(service, live, lease, stored, route, held)
    except REDIS_FAILURES as exc:
        lease.stop_renewing()
        logger.warning("taking over a background run failed: %s", type(exc).__name__)
    except Exception:  # a task of its own: nobody else would hear of it
        lease.stop_renewing()
        logger.exception("taking over a background run failed")


async def runnable(
    service: GraphService, principal: str, run_id: str
) -> tuple[StoredRun, GraphRoute, StoredThread] | None:
    """The run, its graph route and its thread, if it has yet to end on a thread that still
    exists; a run whose graph this server no longer serves ends `error` (a deploy that removed
    its route)."""
    stored = await service.threads.get_run(principal, run_id)
    if stored is None or stored.status not in ("pending", "running"):
        return None
    thread = await service.threads.get(principal, stored.thread_id)
    if thread is None:
        return None
    route = service.graph_routes.get(stored.assistant_id)
    if route is None:
        logger.warning("background run %s: its graph is no longer served", run_id)
        await service.threads.put_run(principal, stored.moved("error"))
        return None
    return stored, route, thread


async def thread_lock(route: GraphRoute, principal: str, stored: StoredRun) -> HeldLock | None:
    """The thread's session lock, waiting for the dead worker's to lapse."""
    services = route.services
    internal = checkpoint_config(route, principal, stored.thread_id)["configurable"]["thread_id"]
    wait = services.settings.session_lock_lease + services.settings.run_lease
    lease = await services.session_locks.acquire(internal, wait)
    return None if lease is None else HeldLock(lease)


async def resume(
    service: GraphService,
    live: LiveRuns,
    lease: BackgroundLease,
    stored: StoredRun,
    route: GraphRoute,
    held: HeldLock,
) -> None:
    """The run again, under the thread's lock: from its last step's checkpoint, or from the
    start if it wrote none."""
    principal = lease.principal
    body = RunCreate.model_validate(stored.kwargs)
    config = resumed_config(route, principal, stored, body)
    holdings = Holdings({config["configurable"]["thread_id"]: held}, [])
    try:
        found = await runnable(service, principal, stored.run_id)
        if found is None:
            await holdings.release()  # it ended while the lock was awaited
            await lease.end()
            return
        thread = found[2]
        saver = route.graph.checkpointer
        assert isinstance(saver, BaseCheckpointSaver)
        last = await saver.aget_tuple(config)
    except BaseException:
        await holdings.release()
        raise
    went_on = last is not None and last.metadata.get("run_id") == stored.run_id
    graph_input = None if went_on else body.graph_input
    logger.info(
        "taking over background run %s from its %s",
        stored.run_id,
        "last checkpoint" if went_on else "start",
    )
    admitted = AdmittedRun(route, principal, stored, thread, graph_input, config)
    context = RequestContext(uuid.uuid4().hex)
    running = RunningRun(
        service, admitted, body, context=context, live=live, holdings=holdings, lease=lease
    )
    if body.on_completion == "delete":
        running.then_forget_thread()
