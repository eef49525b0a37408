"""What travels with one request, in one typed object: created by the trace-id middleware (the
outermost), filled in by the others, by admission and by the chat runnable, and read by the
access log. It lives in the ASGI scope's state, so `request.state` users see it too, and in a
context variable while the request is served, so the runs it starts find their request
(`current_request`) without it travelling in their config."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.types import Scope

from graphs.errors import GraphgateError, Unauthenticated
from graphs.identity import Principal
from graphs.limits.ratelimit import RateLimitDecision
from graphs.memory.session_lock import HeldLock, let_go_all
from graphs.store.redis_client import REDIS_FAILURES

if TYPE_CHECKING:
    from graphs.run_facts import AdmittedTurn

STATE_KEY = "graphgate"
NO_BODY = object()
logger = logging.getLogger(__name__)


@dataclass
class RunRecord:
    """What one chat run did, for the access line."""

    session: str | None = None
    end_user: str | None = None  # `/v1`'s `user`: the caller's own end user, as OpenAI means it
    model: str | None = None
    fallback_used: bool | None = None
    retries: int | None = None
    tokens: int | None = None
    cost_usd: float | None = None
    cache_hit: bool | None = None
    prompt: str | None = None

    def note_reply(self, metadata: dict[str, Any]) -> None:
        """Take what graphgate put in a reply's `response_metadata`."""
        self.model = metadata.get("model")
        self.fallback_used = metadata.get("fallback_used")
        self.retries = metadata.get("retries")
        self.tokens = (metadata.get("usage") or {}).get("total_tokens")
        self.cost_usd = metadata.get("cost_usd")
        self.cache_hit = metadata.get("cache_hit")

    def fields(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


class ClientGone:
    """Callbacks to run if the client disconnects before its response is complete."""

    def __init__(self) -> None:
        self.gone = False
        self._callbacks: list[Callable[[], object]] = []

    def on_disconnect(self, callback: Callable[[], object]) -> None:
        if self.gone:
            callback()
        else:
            self._callbacks.append(callback)

    def fire(self) -> None:
        self.gone = True
        for callback in self._callbacks:
            callback()
        self._callbacks.clear()


@dataclass
class Holdings:
    """What admission took and gives back at the end: session locks, then the reservations and
    rate units no run settled."""

    locks: dict[str, HeldLock]  # by thread id, until the run of that thread claims its own
    on_end: list[Callable[[], Awaitable[None]]]

    async def release(self) -> None:
        await let_go_all(list(self.locks.values()))
        for hook in self.on_end:
            try:
                await hook()
            except REDIS_FAILURES as exc:
                logger.warning("giving back an admission failed: %s", type(exc).__name__)


@dataclass
class RequestContext:
    trace_id: str
    principal: Principal | None = None  # set by the auth middleware
    json_body: Any = NO_BODY  # the parsed body, set by the JSON body middleware
    rate_limit: RateLimitDecision | None = None  # set by admission, for the headers
    # What admission decided, a turn each in the order asked; the runs read their facts here.
    admitted: list[AdmittedTurn] | None = None
    stream_failure: GraphgateError | None = None  # the error that ended a stream
    # The response writes its own SSE error events (the LangGraph API's): none is rewritten.
    writes_own_errors: bool = False
    client_gone: ClientGone = field(default_factory=ClientGone)
    run: RunRecord = field(default_factory=RunRecord)
    # Locks admission took, by thread id, until the run of that session's turn claims its own.
    session_locks_held: dict[str, HeldLock] = field(default_factory=dict)
    # What admission gives back when the request ends (budget reservations, the rate units of
    # turns that never ran), each run once.
    on_end: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def end(self) -> None:
        """Let go of what the request still holds: session locks, then admission's share."""
        await self.hand_over().release()

    def hand_over(self) -> Holdings:
        """What the request holds, now a run's that outlives the request (a background run):
        the request's end lets none of it go."""
        held = Holdings(self.session_locks_held, self.on_end)
        self.session_locks_held, self.on_end = {}, []
        return held

    def caller(self) -> Principal:
        """The principal the auth middleware proved (it runs before every guarded route)."""
        if self.principal is None:
            raise Unauthenticated("This request carries no credential.")
        return self.principal

    def caller_fields(self) -> dict[str, str]:
        """The principal, and the id of the API key it used, for the access line."""
        if self.principal is None:
            return {}
        fields = {"principal": self.principal.name}
        if self.principal.key_id:
            fields["key_id"] = self.principal.key_id
        return fields


def open_request_context(scope: Scope, trace_id: str) -> RequestContext:
    context = RequestContext(trace_id)
    scope.setdefault("state", {})[STATE_KEY] = context
    return context


def request_context(scope: Scope) -> RequestContext:
    """The request's context (the trace-id middleware, outermost, always opens one)."""
    context: RequestContext = scope["state"][STATE_KEY]
    return context


_SERVING: ContextVar[RequestContext | None] = ContextVar("graphgate_request", default=None)


@contextlib.contextmanager
def serving(context: RequestContext) -> Iterator[None]:
    """While the request is served, the runs it starts (and their tasks) find it."""
    token = _SERVING.set(context)
    try:
        yield
    finally:
        _SERVING.reset(token)


def current_request() -> RequestContext | None:
    """The HTTP request being served, if any (none when a runnable is used in process)."""
    return _SERVING.get()
