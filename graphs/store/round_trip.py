"""Commands of several stores sent to Redis together: one round trip where a turn used to make
one per store (#23 measured 9 per invoke turn, each about 60 µs of the worker's CPU; a
pipeline of four scripts costs about what two single calls do).

A store queues its commands with `script` or `command` and gets a `Reply`, read once the trip
is sent. It is a pipeline without a transaction: each command still runs as it would alone
(a script stays atomic), in the order queued. On Redis Cluster, redis-py's cluster pipeline
sends one batch per master, in order within each batch: keys of one hash slot (a session's
lock and checkpoint) keep their order, so one code path serves both. One window stays open: while
an operator migrates a session's slot between masters, redis-py re-sends a redirected command
(ASK, TRYAGAIN) after the rest of the batch, so a lock's release can then run before the
checkpoint write queued ahead of it; the write then finds its lock gone, and the turn fails as
not stored (the client is told, `session_busy`), never silently.

Scripts go as `EVAL` with their text, not `EVALSHA`: a master that has not seen a script
(after a restart or a failover) would refuse it with NOSCRIPT while running the commands queued
after it, and a checkpoint write refused that way with the lock release after it applied would
lose the turn. Redis caches the script by its hash either way.

The in-memory twins queue their calls with `local`; they run in order when the trip is sent.
A trip is a span when OpenTelemetry traces (`graphs/telemetry/trip_spans.py`), named for the
step it serves, with a child for each part of a session's state it reads or writes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from redis.commands.core import AsyncScript

from graphs.store.redis_client import RedisClient
from graphs.telemetry.tracer import tracing
from graphs.telemetry.trip_spans import trip_span

T = TypeVar("T")

logger = logging.getLogger(__name__)

_UNSENT = object()


def _same(raw: Any) -> Any:
    return raw


class Reply(Generic[T]):
    """One command's answer, once its trip has been sent: `value` (decoded), or the error
    Redis answered it with, raised."""

    def __init__(self, decode: Callable[[Any], T], vital: bool = False) -> None:
        self._decode = decode
        self._raw: Any = _UNSENT
        self.vital = vital

    def answered(self, raw: Any) -> None:
        self._raw = raw

    @property
    def sent(self) -> bool:
        return self._raw is not _UNSENT

    @property
    def value(self) -> T:
        if self._raw is _UNSENT:
            raise RuntimeError("read before its round trip was sent")
        if isinstance(self._raw, Exception):
            raise self._raw
        return self._decode(self._raw)


async def alone(redis: RedisClient | None, queue: Callable[[RoundTrip], T]) -> T:
    """What `queue` queues, sent as a round trip of its own with every reply read (a refusal
    raises): one store's call made alone. Returns what `queue` returned (its `Reply`)."""
    trip = RoundTrip(redis)
    queued = queue(trip)
    await trip.send_checked()
    return queued


class RoundTrip:
    """The commands of one step of a turn (its admission, its end), sent as one pipeline."""

    def __init__(self, redis: RedisClient | None, name: str = "redis") -> None:
        self._redis = redis
        self.name = name  # the step it serves, its span's name
        self._parts: list[str] = []  # what of a session's state it carries, for its span
        self._commands: list[tuple[tuple[Any, ...], Reply[Any]]] = []
        self._locals: list[tuple[Callable[[], Awaitable[Any]], Reply[Any]]] = []
        self._sent: list[Reply[Any]] = []
        self.closed = False  # sent: what is queued now would never go

    def _queued(self) -> None:
        if self.closed:
            raise RuntimeError("queued in a round trip already sent")

    def command(
        self,
        *args: Any,
        decode: Callable[[Any], T] = _same,
        vital: bool = False,
        part: str | None = None,
    ) -> Reply[T]:
        """`args` queued; `vital`: the trip's purpose fails if this does (`check_vital`);
        `part`: what of a session's state it reads or writes (`checkpoint write`)."""
        self._queued()
        if part is not None:
            self._parts.append(part)
        reply: Reply[T] = Reply(decode, vital)
        self._commands.append((args, reply))
        return reply

    def script(
        self,
        script: AsyncScript,
        keys: list[str],
        args: list[Any],
        decode: Callable[[Any], T] = _same,
        vital: bool = False,
        part: str | None = None,
    ) -> Reply[T]:
        args = ["EVAL", script.script, len(keys), *keys, *args]
        return self.command(*args, decode=decode, vital=vital, part=part)

    def local(self, call: Callable[[], Awaitable[T]]) -> Reply[T]:
        self._queued()
        reply: Reply[T] = Reply(_same)
        self._locals.append((call, reply))
        return reply

    async def send(self) -> None:
        """Send what was queued, once; a Redis that cannot answer raises here, and a command
        that Redis refused (or a local call that failed) raises when its reply is read. Every
        local call runs, whichever failed before it (a lock's release comes last)."""
        self.closed = True
        if not tracing():
            await self._send()
            return
        with trip_span(self.name, self._parts, len(self._commands)):
            await self._send()

    async def _send(self) -> None:
        commands, self._commands = self._commands, []
        if commands:
            assert self._redis is not None, "a Redis command queued without Redis"
            async with self._redis.pipeline(transaction=False) as pipe:
                for args, _ in commands:
                    pipe.execute_command(*args)
                answers = await pipe.execute(raise_on_error=False)
            for (_, reply), answer in zip(commands, answers, strict=True):
                reply.answered(answer)
            self._sent += [reply for _, reply in commands]
        calls, self._locals = self._locals, []
        for call, reply in calls:
            try:
                reply.answered(await call())
            except Exception as exc:  # noqa: BLE001  # raised when its reply is read, as Redis's
                reply.answered(exc)
            self._sent.append(reply)

    async def send_checked(self) -> None:
        """`send`, then `check`: a trip whose replies nobody else reads (a write)."""
        await self.send()
        self.check()

    def check(self) -> None:
        """Read every reply of what was sent: the first refusal (or a decoder's verdict, a
        checkpoint write that found its lock lost) raises."""
        for reply in self._sent:
            _ = reply.value

    def check_vital(self) -> None:
        """Read every reply: the first vital one refused raises; the others' refusals are
        logged (the trip's purpose was served, what failed beside it is said)."""
        for reply in self._sent:
            try:
                _ = reply.value
            except Exception as exc:
                if reply.vital:
                    raise
                logger.error("a write beside a turn's own failed: %s", type(exc).__name__)
