"""How an admitted turn runs a graph, whichever API admitted it (LangServe's chat runnable, the
LangGraph API's runs): its config (the thread and facts admission gave it), its session lock
held while it reads and writes its thread (`saver`, the graph's checkpointer, confirms it
before writing), its cancellation when the client goes, and where its outcome is noted for
the access line.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.constants import CONFIG_KEY_CHECKPOINTER
from langserve.callbacks import AsyncEventAggregatorCallback

from api.chat_schema import SESSION_ID
from graphs.errors import SessionLeaseLost
from graphs.identity import thread_id
from graphs.memory.session_lock import HeldLock, kept
from graphs.route_services import RouteServices
from graphs.routes import BUILT_IN_CHAT
from graphs.run_facts import FACTS_KEY, facts_of, with_facts
from graphs.store.redis_client import REDIS_FAILURES
from graphs.store.round_trip import RoundTrip
from graphs.telemetry.run_spans import with_run_spans
from middleware.request_context import ClientGone, RunRecord, current_request

logger = logging.getLogger(__name__)

# What sending a failed turn's ending trip may meet: Redis failing, or its lock lost too.
ENDING_FAILURES: tuple[type[Exception], ...] = (*REDIS_FAILURES, SessionLeaseLost)


def graph_config(
    config: RunnableConfig | None, thread_route: str | None, index: int = 0, **facts: Any
) -> RunnableConfig:
    """The config of the run of a request's turn `index`: the thread and facts admission gave
    it, or (a run that did not come through HTTP) the thread of its `session_id`; its facts
    with the `facts` given here (`RunFacts`' fields); without LangServe's event aggregator."""
    configurable = dict((config or {}).get("configurable", {}))
    request = current_request()
    if request is not None and request.admitted is not None:
        admitted = request.admitted[index]
        configurable.pop("thread_id", None)
        if admitted.thread is not None:
            configurable["thread_id"] = admitted.thread
        configurable[FACTS_KEY] = dataclasses.replace(admitted.facts, **facts)
    else:
        own = facts_of(config or {})
        configurable[FACTS_KEY] = dataclasses.replace(own, **facts)
        if (session := configurable.get(SESSION_ID)) and "thread_id" not in configurable:
            configurable["thread_id"] = thread_id(own.principal, session, thread_route)
    graph_run: RunnableConfig = {**(config or {}), "configurable": configurable}
    callbacks = graph_run.get("callbacks")
    if isinstance(callbacks, list):
        # LangServe hands every invoke, batch and stream an aggregator of the run's callback
        # events, and returns them only on routes added with `include_callback_events`, which
        # ours are not. Each of its events runs as a task of its own: 16 a turn, and one a token.
        callbacks = [c for c in callbacks if not isinstance(c, AsyncEventAggregatorCallback)]
    principal = configurable[FACTS_KEY].principal
    traced = with_run_spans(callbacks, thread_route or BUILT_IN_CHAT.name, principal)
    if traced is not None:
        graph_run["callbacks"] = traced
    return graph_run


def cancel_once(run: asyncio.Task[Any]) -> None:
    """Cancel `run` unless it is done or already being cancelled: a second cancellation would
    interrupt the first one's clean-up (LangGraph's wait for its exit checkpoint)."""
    if not run.done() and not run.cancelling():
        run.cancel()


def cancel_when_client_goes(run: asyncio.Task[Any]) -> ClientGone | None:
    """Cancel `run` if the request's client disconnects; the request's `ClientGone`, if any."""
    request = current_request()
    if request is None:
        return None
    request.client_gone.on_disconnect(lambda: cancel_once(run))
    return request.client_gone


def run_record() -> RunRecord | None:
    """Where the run's outcome goes for the access line, if it serves a request."""
    request = current_request()
    return None if request is None else request.run


async def admitted_lock(services: RouteServices, thread: str) -> HeldLock:
    """The session lock admission took for the turn's request, or (a run that did not come
    through HTTP) one taken now."""
    request = current_request()
    if request is None:
        return await services.take_session_lock(thread)
    admitted = request.session_locks_held.pop(thread, None)
    if admitted is None:
        # Its request has ended and let its locks go (a batch that failed while this turn
        # waited): the turn must not run on a session it no longer holds.
        raise SessionLeaseLost("The request ended before this turn started.")
    return admitted


@contextlib.asynccontextmanager
async def session_turn(
    config: RunnableConfig,
    services: RouteServices,
    saver: object,
    held: HeldLock | None = None,
    *,
    one_end_trip: bool = False,
) -> AsyncIterator[RunnableConfig]:
    """Hold the session's lock while the run reads and writes its history: `held` (a run that
    outlives its request was handed its lock), else the lock admission took for it, else (a run
    that did not come through HTTP) one taken now. The config to run with carries it in its
    facts, where the checkpointer confirms it before writing. With `one_end_trip` (a turn that
    checkpoints once, when it ends), its checkpoint, usage and settlement wait in its facts'
    `ending` trip, which goes to Redis with the lock's release."""
    thread = config["configurable"].get("thread_id")
    if thread is None:
        yield config
        return
    held = held or await admitted_lock(services, thread)
    config = with_facts(config, session_lock=held)
    deferred = facts_of(config).deferred
    if deferred is not None and isinstance(saver, BaseCheckpointSaver):
        # A batch's turn: its checkpoint, and the lock that the write checks, wait for the
        # whole batch.
        deferred.hold(held)
        config["configurable"][CONFIG_KEY_CHECKPOINTER] = deferred.saver(saver)
        yield config
        return
    if not one_end_trip:
        async with kept(held):
            yield config
        return
    ending = services.round_trip("turn end")
    async with ended_in_one_trip(held, ending):
        yield with_facts(config, ending=ending)


@contextlib.asynccontextmanager
async def ended_in_one_trip(held: HeldLock, ending: RoundTrip) -> AsyncIterator[None]:
    """Send `ending`, the lock's release last, however the block ends, shielded from the
    cancellation that may be ending it (what the turn used was paid for). A run that failed
    keeps its own error. One that succeeded fails only if its checkpoint write did (its lock
    lost, or Redis refused it: the turn was not stored); a usage or settlement write that
    failed beside a stored turn is logged, since failing the turn would have its client send
    it, and pay for it, again."""
    try:
        yield
    except BaseException:
        held.let_go_in(ending)
        try:
            await asyncio.shield(ending.send_checked())
        except ENDING_FAILURES as exc:  # the run's own error is what its client hears
            logger.warning("ending a failed turn's round trip failed: %s", type(exc).__name__)
        raise
    held.let_go_in(ending)
    await asyncio.shield(ending.send())
    ending.check_vital()
