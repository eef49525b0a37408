"""The one admission of every API, before any response starts, so a refused request gets its
HTTP status (400, 409, 413, 422, 429, 503) instead of a 200 stream with an error inside, and a
run only ever starts on a turn that is known to be sound. `admit` does it in one order: the
principal, the batch bound (before any input is read), the API's own reading of its request
(an `Ask`: turns, sessions, generation parameters, tools), the graph's decision
(`graphs/admission.py`: the thread ids, the input guard with each turn's tokens counted once,
the budgets, the rate limit), and last the session locks. The budgets, the rate window and a
single session's lock, with that session's checkpoint read after it, go to Redis in one round
trip (`graphs/store/round_trip.py`); the run reads its history from it. The request context
keeps an `AdmittedTurn` per turn, which the chat runnable puts on each run (`graphs/run_facts.py`):
nothing after it derives a thread id or counts a turn's tokens again. LangServe's routes read
their body in `api/langserve_body.py`, `/v1` in `api/openai_request.py`.

The graph applies guard and limit itself (under `langgraph dev` nothing else does); a run's
facts carry the request's `Admission`, so the limit node does not count the request twice and
claims its turn's budget reservation from it. What admission took and no run used (the
reservations, the rate units of a request refused after counting, the session locks) is given
back when the request ends (`RequestContext.end`), or at once when admission refuses it or
its round trip is cut short.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from fastapi import Request

from graphs.admission import Ask, QueuedDecision, decided, queue_decision, refuse_oversized_batch
from graphs.identity import Principal
from graphs.memory.session_lock import HeldLock
from graphs.nodes.limit import forget, give_back
from graphs.route_services import RouteServices
from graphs.run_facts import AdmittedTurn
from middleware.request_context import RequestContext, request_context


async def hold_sessions(
    context: RequestContext, services: RouteServices, threads: list[str], ask: Ask
) -> None:
    """Take the lock of every session the request continues that admission's round trip did
    not already take, before any response starts (a busy session's 409 or 503 is the
    response's status), in one order (two batches that share sessions cannot each wait for the
    other), first making way if `ask` says how; the request context keeps them for the runs."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + services.settings.queue_timeout
    try:
        for thread in sorted(threads):
            if ask.make_way is not None and await services.session_locks.is_held(thread):
                await ask.make_way()
            wait = max(0.0, deadline - loop.time())
            held = await services.take_session_lock(thread, wait, ask.session_conflict)
            context.session_locks_held[thread] = held
    except BaseException:
        # Refused before it runs: its locks, reservations and rate units go back now, before
        # the client hears of it.
        await context.end()
        raise


async def admission_trip(
    context: RequestContext, services: RouteServices, principal: Principal, ask: Ask
) -> QueuedDecision:
    """Queue the decision (with a single session's start), send it in one round trip, and
    keep the session's lock if it was free."""
    trip = services.round_trip("admission")
    queued = queue_decision(services, trip, principal, ask)
    start = queued.start
    try:
        await trip.send()
    except BaseException:
        # Cut short (the client left, Redis failed) with the scripts maybe applied.
        if start is not None:
            await start.attempt.abandon()
        await forget(services, queued.limits)
        raise
    if start is not None and (lease := start.lease()) is not None:
        context.session_locks_held[start.thread] = HeldLock(lease)
    return queued


async def admit(
    request: Request, services: RouteServices, read: Callable[[], Ask], size: int = 1
) -> list[AdmittedTurn]:
    """Admit a request to the route of `services`, in order (see the module's docstring);
    `read` is the API's reading of its request, called once the batch bound (`size` inputs)
    allows it."""
    context = request_context(request.scope)
    principal = context.caller()
    refuse_oversized_batch(services, principal, size)
    ask = read()
    if services.settings.log_prompts:
        context.run.prompt = " | ".join(asked.question for asked in ask.turns)
    queued = await admission_trip(context, services, principal, ask)
    try:
        decision = await decided(services, queued)
    except BaseException:
        await context.end()
        raise
    context.rate_limit = decision.rate
    if decision.refused is not None:
        await context.end()
        raise decision.refused
    admission = decision.admission
    if admission is not None:
        context.on_end.append(lambda: give_back(services, admission))
    context.admitted = decision.turns
    context.run.end_user = ask.end_user
    context.run.session = next((a.session for a in reversed(ask.turns) if a.session), None)
    held = context.session_locks_held
    waiting = [t.thread for t in decision.turns if t.thread and t.thread not in held]
    await hold_sessions(context, services, waiting, ask)
    return context.admitted
