"""An admitted LangGraph API run in a task of its own, which feeds its response (events as they
come), so it can be cancelled when the client leaves (`on_disconnect=cancel`) or a `/cancel`
or a later run of its thread asks (`api/langgraph/live_runs.py`), whatever the response is
doing. A thread's run writes its checkpoint once it has ended (kept, or dropped when rolled
back) and settles its records before its thread is free and its events end: the Python client
asks for a run that is still `running` when its stream closes, and follows it.

A run that outlives its request (a background run, or one that goes on without its client)
is handed what admission took for it (the session lock, the budget reservation), which its
request's end would otherwise give back, and gives it back itself when it ends. A background
run checkpoints every step as it goes, under a lease in Redis, so that another worker can take
it over if this one dies (`api/langgraph/run_takeover.py`); rolled back, it puts its thread
back as it found it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple
from langgraph.types import Durability
from redis.exceptions import RedisClusterException, RedisError

from api.admitted_run import cancel_once, session_turn
from api.langgraph.background_lease import BackgroundLease
from api.langgraph.bodies import RunCreate
from api.langgraph.events import RunEvents, native_modes
from api.langgraph.live_runs import LiveRuns
from api.langgraph.run_admission import AdmittedRun
from api.langgraph.run_outcome import RunOutcome, forget_run_thread, record_outcome
from api.langgraph.wire import dumps
from graphs.errors import GraphgateError
from graphs.graph_run import stream_graph_run
from graphs.memory.deferred_saver import DeferredWrites, restore
from graphs.memory.thread_records import CancelAction, RunStatus, StoredRun
from graphs.run_facts import with_facts
from graphs.service import GraphService
from graphs.store.redis_client import REDIS_FAILURES, store_unavailable
from middleware.error_responses import langgraph_run_error
from middleware.request_context import Holdings, RequestContext

logger = logging.getLogger("graphgate")
DONE = object()


class RunningRun:
    """An admitted run in its own task: its stream parts become events as they come, and its
    records are settled when it ends, however it ends, before its events end. `holdings` is
    what it was handed by its request (None: the request's end gives it back); `lease`, a
    background run's."""

    def __init__(
        self,
        service: GraphService,
        admitted: AdmittedRun,
        body: RunCreate,
        *,
        context: RequestContext,
        live: LiveRuns,
        holdings: Holdings | None = None,
        lease: BackgroundLease | None = None,
    ) -> None:
        self.admitted = admitted
        self.events = RunEvents(body.stream_modes, body.stream_subgraphs)
        self.status: RunStatus = "running"
        self.failure: dict[str, Any] | None = None
        self._service = service
        self._modes = native_modes(body.stream_modes)
        self._subgraphs = body.stream_subgraphs
        self._with_events = "events" in body.stream_modes
        self._context = context
        self._context.writes_own_errors = True
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._holdings = holdings
        self._lease = lease
        self._settled = False
        self._started = False
        self._ending: asyncio.Task[None] | None = None
        self.action: CancelAction = "interrupt"  # what a cancellation keeps of the run
        # A thread's checkpoint waits for the run's end, so a rolled-back run leaves none; a
        # background run's is written every step, and what it found is kept to put back.
        self._writes = None
        if admitted.thread is not None:
            self._writes = DeferredWrites(through=lease is not None)
        self._found: CheckpointTuple | None = None
        self._config: RunnableConfig | None = None
        self._forget_thread = False
        self._final: StoredRun | None = None
        # A resumable run's events are kept for a client that rejoins it, which a run that
        # goes on without its client (`on_disconnect=continue`) may well need.
        self.resumable = body.stream_resumable
        self.goes_on_alone = holdings is not None
        self._task = asyncio.create_task(self._run())
        self._task.add_done_callback(self._after)
        live.add(admitted.record.run_id, self)
        if service.redis is not None and admitted.thread is not None:
            watch = asyncio.create_task(self._cancel_when_asked())
            self._task.add_done_callback(lambda _: watch.cancel())
        if lease is not None:
            lease.keep(self.stop)

    async def _cancel_when_asked(self) -> None:
        """Cancel the run when a `/cancel` that reached another worker or pod asks for it."""
        admitted = self.admitted
        every = admitted.route.services.settings.run_cancel_poll
        # The request is in Redis, where no event reaches this process: it is read.
        asked = None
        while asked is None:
            await asyncio.sleep(every)
            asked = await self._service.threads.cancel_asked(
                admitted.principal, admitted.record.run_id
            )
        self.stop(asked)

    @property
    def task(self) -> asyncio.Task[None]:
        return self._task

    @property
    def rolled_back(self) -> bool:
        return self.status == "interrupted" and self.action == "rollback"

    def _after(self, _: asyncio.Task[None]) -> None:
        """However the task ended, its events end; a task cancelled before it began (its
        `finally` never ran) ends the run first."""
        if self._started:
            self._queue.put_nowait(DONE)
        else:
            self._ending = asyncio.create_task(self._end_unstarted())

    async def _end_unstarted(self) -> None:
        try:
            await self._end()
        finally:
            self._queue.put_nowait(DONE)

    async def _run(self) -> None:
        self._started = True
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
            await self._end()

    async def _end(self) -> None:
        """The checkpoint, then the records, then the thread goes: a run that takes the
        thread next finds this one's outcome recorded. Then what the run was handed."""
        try:
            if self._lease is None or not self._lease.lost:
                await self._keep_or_drop_writes()
                await self._settle_once()
        finally:
            if self._writes is not None:
                await self._writes.discard()
            if self._holdings is not None:
                await self._holdings.release()
            if self._lease is not None:
                await self._lease.end()
            if self._forget_thread:
                await forget_run_thread(self._service, self.admitted, self._final)

    def then_forget_thread(self) -> None:
        """Delete the run's thread once it has ended (a stateless background run's)."""
        self._forget_thread = True

    async def _keep_or_drop_writes(self) -> None:
        """The run's checkpoint goes to the thread, unless the run was rolled back (the
        thread's session lock, which the writes hold, is let go after). A checkpoint that
        cannot be written fails the run (its client hears of it in the `error` event)."""
        if self._writes is None:
            return
        try:
            if not self.rolled_back:
                await self._writes.write_holding()
            elif self._writes.through and self._config is not None:
                saver = self.admitted.route.graph.checkpointer
                assert isinstance(saver, BaseCheckpointSaver)
                await asyncio.shield(restore(saver, self._config, self._found))
        except GraphgateError as exc:  # the lock was lost: another run has the thread
            self._fail(exc)
        except (RedisError, RedisClusterException) as exc:
            self._fail(store_unavailable(exc))

    async def _stream(self) -> None:
        route = self.admitted.route
        saver = route.graph.checkpointer
        config = with_facts(self.admitted.config, deferred=self._writes)
        held = None
        if self._holdings is not None:
            held = self._holdings.locks.pop(config["configurable"].get("thread_id", ""), None)
        async with session_turn(config, route.services, saver, held) as config:
            through = self._writes is not None and self._writes.through
            if through and isinstance(saver, BaseCheckpointSaver):
                self._config = config
                self._found = await saver.aget_tuple(config)
            async for part in stream_graph_run(
                route,
                self.admitted.graph_input,
                config,
                self._modes,
                self._subgraphs,
                self._with_events,
                self._durability(through),
            ):
                for name, data in self.events.of(part):
                    await self._emit(name, data)

    def _durability(self, through: bool) -> Durability:
        """A background run writes every step as it goes. Another thread run checkpoints every
        step too when its thread keeps a history (the clients regenerate from the checkpoint
        before the model's answer), all written when it ends; else once, at its end."""
        if through:
            return "sync"
        return "async" if self.admitted.route.services.settings.checkpoint_history > 1 else "exit"

    async def _emit(self, name: str, data: Any) -> None:
        """An event to the response (a background run has none), and to the run's log if it
        is resumable (its id)."""
        if not self.resumable:
            if self._lease is None:
                self._queue.put_nowait((name, dumps(data), None))
            return
        written = dumps(data)
        admitted = self.admitted
        event_id = await self._service.run_events.append(
            admitted.principal, admitted.record.run_id, name, written
        )
        self._queue.put_nowait((name, written, event_id))

    def _fail(self, error: GraphgateError | None) -> None:
        self.status = "error"
        self._context.stream_failure = error
        self.failure = langgraph_run_error(error, self._context.trace_id)

    async def _settle_once(self) -> None:
        """Settle the run's records once. A store that fails here is logged: the run's own
        outcome has been told."""
        if self._settled:
            return
        self._settled = True
        if self.status == "running":
            self.status = "interrupted"
        try:
            await asyncio.shield(self._settle())
            if self.failure is not None:
                await self._emit("error", self.failure)
            if self.resumable:
                admitted = self.admitted
                await self._service.run_events.end(admitted.principal, admitted.record.run_id)
        except REDIS_FAILURES as exc:
            logger.warning("recording a LangGraph API run's end failed: %s", type(exc).__name__)

    async def _settle(self) -> None:
        output = self.events.result() if self._forget_thread else None
        outcome = RunOutcome(
            self.status, self.rolled_back, bool(self.events.interrupts), self.failure, output
        )
        self._final = await record_outcome(self._service, self.admitted, outcome)

    async def events_as_they_come(self) -> AsyncIterator[tuple[str, bytes, str | None]]:
        """The run's events (name, JSON data, id if resumable); a failure ends them with an
        `error` event."""
        while (event := await self._queue.get()) is not DONE:
            yield event

    async def hand_back(self) -> None:
        """A background run of a worker that stops: its lease goes back, for another worker
        to take the run over from its last step, and this copy stops without an outcome."""
        if self._lease is None:
            return
        await self._lease.hand_back()
        cancel_once(self._task)
        await asyncio.wait([self._task])

    def stop(self, action: CancelAction = "interrupt") -> None:
        """Cancel the run; `rollback` drops what it did (once asked, it stays asked)."""
        if action == "rollback":
            self.action = action
        cancel_once(self._task)
