"""The admission decision for a request's turns: the thread of each turn's session, the input
guard (each turn's tokens counted once), the budgets and the rate limit, and the facts each
admitted run carries (`graphs/run_facts.py`). The budgets, the rate window and a single
session's lock, with its checkpoint read after it, are queued in one round trip
(`queue_decision`) that the serving layer (`api/admission.py`) sends and keeps the lock of, then
reads (`decided`); nothing of HTTP is here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from langchain_core.messages import BaseMessage

from graphs.errors import (
    GraphgateError,
    InvalidInput,
    PayloadTooLarge,
    UnsupportedParameter,
    refuse_too_long,
)
from graphs.identity import Principal, thread_id
from graphs.limits.ratelimit import RateLimitDecision
from graphs.limits.reservations import budget_caps, input_to_reserve
from graphs.memory.checkpoint_read import Prefetched, read_in
from graphs.memory.session_lock import LockAttempt, SessionLease
from graphs.model.params import ModelParams
from graphs.model.turn import ToolRequest
from graphs.nodes.guard import guard_turn
from graphs.nodes.limit import (
    Admission,
    QueuedAdmission,
    admitted,
    queue_admit,
    rate_limit,
    refusal,
)
from graphs.route_services import RouteServices
from graphs.run_facts import AdmittedTurn, RunFacts
from graphs.store.keys import RedisKeys
from graphs.store.round_trip import RoundTrip


@dataclass(frozen=True)
class AskedTurn:
    """One turn as an API read it: its question and messages, the session it continues, its
    generation parameters."""

    question: str
    messages: Sequence[BaseMessage]
    session: str | None = None
    params: ModelParams = field(default_factory=ModelParams)
    # The input's tokens, when the API counted them itself: a graph route's input has the
    # graph's own shape, which the chat guard's rules do not fit; only its size is bounded.
    counted: int | None = None


@dataclass(frozen=True)
class Ask:
    """What a request asks to run: its turns, and (`/v1`) its tools and end user."""

    turns: list[AskedTurn]
    tools: ToolRequest = field(default_factory=ToolRequest)
    end_user: str | None = None
    # What to do when a session is busy (`enqueue` or `reject`); None: `SESSION_CONFLICT`.
    session_conflict: str | None = None
    # Done first when a session is busy, before waiting for it (the LangGraph API's
    # `interrupt` and `rollback` strategies stop the run that holds it).
    make_way: Callable[[], Awaitable[None]] | None = None


@dataclass(frozen=True)
class Decision:
    """What admission decided: the rate window's answer (for the headers, refused or not), and
    either what it took with a turn each to run, or why not."""

    rate: RateLimitDecision
    admission: Admission | None = None
    turns: list[AdmittedTurn] = field(default_factory=list)
    refused: GraphgateError | None = None


def refuse_oversized_batch(services: RouteServices, principal: Principal, size: int) -> None:
    """413 for a batch larger than `MAX_BATCH_SIZE`, or than the rate limit (a 429 that no wait
    would cure), checked before any input is read: a flood of tiny inputs then costs one
    `len`."""
    limit = rate_limit(services, principal.quota)
    largest = min(services.settings.max_batch_size, limit)
    if size > largest:
        raise PayloadTooLarge(
            f"A batch holds at most {largest} inputs (MAX_BATCH_SIZE="
            f"{services.settings.max_batch_size}, rate limit {limit}); this one has {size}."
        )


def refuse_repeated_sessions(sessions: list[str]) -> None:
    """A batch never holds two turns of one session: the second would wait for the first's
    lock, which the batch keeps until its end (admission and in-process batches alike)."""
    if len(sessions) != len(set(sessions)):
        raise InvalidInput("A batch cannot hold two turns of one session; send them in order.")


def session_threads(principal: str, ask: Ask, services: RouteServices) -> list[str | None]:
    """The thread of each turn's session (None for a one-off turn). Every session id follows
    the rule, on a route that keeps sessions; a batch never holds two turns of one session."""
    named = [asked.session for asked in ask.turns if asked.session]
    if named and not services.route.sessions:
        raise InvalidInput(
            f"The route {services.route.name} keeps no sessions: run it without one "
            "(no session_id; on the LangGraph API, a stateless run)."
        )
    threads = [
        thread_id(principal, asked.session, services.thread_route) if asked.session else None
        for asked in ask.turns
    ]
    refuse_repeated_sessions(named)  # each a valid session id, so a string, by now
    return threads


def guard(services: RouteServices, ask: Ask) -> list[int]:
    """The input guard of each turn (`graphs/nodes/guard.py`), and its tokens, counted once."""
    if ask.tools.tools and not services.calls_tools:
        raise UnsupportedParameter("tools", "a configured model cannot call tools (the demo model)")
    return [guarded_tokens(services, asked) for asked in ask.turns]


def guarded_tokens(services: RouteServices, asked: AskedTurn) -> int:
    if asked.counted is None:
        return guard_turn(services, asked.question, asked.messages).tokens
    refuse_too_long(asked.counted, services.settings.max_input_tokens)
    return asked.counted


@dataclass
class SessionStart:
    """A session's lock tried, and then its checkpoint read, in admission's round trip."""

    thread: str
    attempt: LockAttempt
    checkpoint: Prefetched | None
    taken: bool = False

    def lease(self) -> SessionLease | None:
        """Once the trip is sent: the lock, if it was free (its checkpoint then read under it)."""
        lease = self.attempt.lease()
        self.taken = lease is not None
        return lease


@dataclass(frozen=True)
class QueuedDecision:
    """What `queue_decision` read and queued: each turn's thread and tokens, the budgets and
    rate window's part in the round trip, and a single session's start."""

    principal: Principal
    ask: Ask
    threads: list[str | None]
    tokens: list[int]
    limits: QueuedAdmission
    start: SessionStart | None


def queue_decision(
    services: RouteServices, trip: RoundTrip, principal: Principal, ask: Ask
) -> QueuedDecision:
    """Admit `ask`'s turns for `principal`, up to the round trip: threads and guard (invalid
    input raises here), then each turn's worst case queued against the budgets and the turns
    in the rate window (a session's history is reserved once the run has fitted it,
    `cover_prompt`)."""
    threads = session_threads(principal.name, ask, services)
    tokens = guard(services, ask)
    tools_tokens = services.counter.count_tools(ask.tools.tools)
    caps_on = budget_caps(services, principal.quota).on
    asks = [
        (
            input_to_reserve(services, turn_tokens + tools_tokens) if caps_on else 0,
            asked.params.max_tokens,
        )
        for asked, turn_tokens in zip(ask.turns, tokens, strict=True)
    ]
    limits = queue_admit(services, trip, principal.name, asks, principal.quota)
    start = one_session_start(services, trip, threads, ask)
    return QueuedDecision(principal, ask, threads, tokens, limits, start)


def one_session_start(
    services: RouteServices, trip: RoundTrip, threads: list[str | None], ask: Ask
) -> SessionStart | None:
    """For a request that continues one session and makes way for no other run: one try for
    its lock queued in admission's trip and, after it, the read of its checkpoint (the run's
    first read, `graphs/memory/checkpoint_read.py`). A request of several sessions takes its
    locks in order, one at a time (`api/admission.py`): taken at once, two batches could each
    hold what the other waits for."""
    sessions = [thread for thread in threads if thread]
    if len(sessions) != 1 or ask.make_way is not None:
        return None
    thread = sessions[0]
    attempt = services.session_locks.attempt_in(trip, thread)
    if services.redis is None:
        return SessionStart(thread, attempt, None)
    settings = services.settings
    key = RedisKeys(settings.redis_prefix).checkpoint(thread)
    fields = read_in(trip, key, int(settings.session_ttl * 1000))
    return SessionStart(thread, attempt, Prefetched(thread, fields))


async def decided(services: RouteServices, queued: QueuedDecision) -> Decision:
    """The decision, once the trip is sent: a refusal by the budgets raises, one by the rate
    window comes back as the decision's `refused`, with the window's answer."""
    rate, reservations = await admitted(services, queued.limits)
    if not rate.allowed:
        return Decision(rate, refused=refusal(rate, services.settings.rate_limit_window))
    ask = queued.ask
    start = queued.start
    prefetched = start.checkpoint if start is not None and start.taken else None
    admission = Admission(queued.principal.name, queued.limits.caps)
    admission.took(rate, len(ask.turns), reservations)
    turns = [
        AdmittedTurn(
            thread,
            RunFacts(
                queued.principal.name,
                admission=admission,
                params=asked.params,
                turn_tokens=turn_tokens,
                tools=ask.tools,
                end_user=ask.end_user,
                checkpoint=prefetched if prefetched and prefetched.thread_id == thread else None,
            ),
        )
        for asked, thread, turn_tokens in zip(ask.turns, queued.threads, queued.tokens, strict=True)
    ]
    return Decision(rate, admission, turns)
