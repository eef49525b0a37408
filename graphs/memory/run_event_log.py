"""The events of a resumable LangGraph API run (`stream_resumable=true`), kept so that a client
whose connection broke can rejoin the run on any worker or pod and read on from the last event
it had (`Last-Event-ID`), then follow it live until it ends.

In Redis a run's events are a stream, `<prefix>lg_events:{<principal>}:<run>`: each event an
entry (its id is the SSE event id), capped at `RUN_EVENTS_MAX` entries (`MAXLEN ~`) and
expiring `RUN_EVENTS_TTL` seconds after the last one; the run's end is an entry of its own. A
reader replays with `XRANGE` and follows with a blocking `XREAD`. Cost: one round trip per
event written (an `XADD` and an `EXPIRE` pipelined), and one connection per follower while it
waits. Embedded, the log is a list in this process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any, Protocol

from graphs.store.keys import RedisKeys
from graphs.store.redis_client import RedisClient

END = "__end__"
# How long a follower's blocking read waits before it looks again (and notices the log gone).
FOLLOW_BLOCK_MS = 5000

LoggedEvent = tuple[str, str, bytes]  # id, event name, data


class RunEventLog(Protocol):
    async def append(self, principal: str, run_id: str, event: str, data: bytes) -> str:
        """Keep the event; its id."""

    async def end(self, principal: str, run_id: str) -> None:
        """Mark the run's end: followers stop there."""

    async def exists(self, principal: str, run_id: str) -> bool: ...

    def read(self, principal: str, run_id: str, after: str | None) -> AsyncIterator[LoggedEvent]:
        """The events after `after` (all of them: None), then the new ones as they come, until
        the run's end."""


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisRunEventLog:
    def __init__(self, redis: RedisClient, prefix: str, max_events: int, ttl: int) -> None:
        self._redis = redis
        self._keys = RedisKeys(prefix)
        self._max = max_events
        self._ttl = ttl

    async def append(self, principal: str, run_id: str, event: str, data: bytes) -> str:
        key = self._keys.run_events(principal, run_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.xadd(key, {"e": event, "d": data}, maxlen=self._max, approximate=True)
            pipe.expire(key, self._ttl)
            added, _ = await pipe.execute()
        return text(added)

    async def end(self, principal: str, run_id: str) -> None:
        await self.append(principal, run_id, END, b"")

    async def exists(self, principal: str, run_id: str) -> bool:
        return bool(await self._redis.exists(self._keys.run_events(principal, run_id)))

    async def read(
        self, principal: str, run_id: str, after: str | None
    ) -> AsyncIterator[LoggedEvent]:
        key = self._keys.run_events(principal, run_id)
        last = after or "0-0"
        while True:
            found: Any = await self._redis.xread({key: last}, count=100, block=FOLLOW_BLOCK_MS)
            if not found and not await self._redis.exists(key):
                return  # expired, or deleted with its thread
            for _, entries in found:
                for entry_id, fields in entries:
                    last = text(entry_id)
                    named = {text(name): value for name, value in fields.items()}
                    if text(named["e"]) == END:
                        return
                    data = named["d"]
                    yield last, text(named["e"]), data if isinstance(data, bytes) else data.encode()


class MemoryRunEventLog:
    """Embedded twin: each run's events in a list, forgotten `ttl` seconds after the last."""

    def __init__(self, max_events: int, ttl: int) -> None:
        self._max = max_events
        self._ttl = ttl
        self._logs: dict[tuple[str, str], list[LoggedEvent]] = {}
        self._touched: dict[tuple[str, str], float] = {}
        self._changed = asyncio.Condition()

    async def append(self, principal: str, run_id: str, event: str, data: bytes) -> str:
        self._forget_expired()
        log = self._logs.setdefault((principal, run_id), [])
        number = int(log[-1][0].split("-")[0]) + 1 if log else 1
        log.append((f"{number}-0", event, data))
        del log[: max(0, len(log) - self._max)]
        self._touched[(principal, run_id)] = time.monotonic()
        async with self._changed:
            self._changed.notify_all()
        return log[-1][0]

    async def end(self, principal: str, run_id: str) -> None:
        await self.append(principal, run_id, END, b"")

    async def exists(self, principal: str, run_id: str) -> bool:
        self._forget_expired()
        return (principal, run_id) in self._logs

    async def read(
        self, principal: str, run_id: str, after: str | None
    ) -> AsyncIterator[LoggedEvent]:
        seen = int((after or "0-0").split("-")[0])
        while True:
            async with self._changed:  # looked at under the lock: no append slips by
                log = self._logs.get((principal, run_id))
                fresh = [e for e in log or [] if int(e[0].split("-")[0]) > seen]
                if log is not None and not fresh:
                    await self._changed.wait()
            if log is None:
                return
            for entry in fresh:
                if entry[1] == END:
                    return
                seen = int(entry[0].split("-")[0])
                yield entry

    def _forget_expired(self) -> None:
        now = time.monotonic()
        for key in [k for k, at in self._touched.items() if at + self._ttl < now]:
            self._logs.pop(key, None)
            self._touched.pop(key, None)


def build_run_event_log(
    redis: RedisClient | None, prefix: str, max_events: int, ttl: int
) -> RunEventLog:
    if redis is None:
        return MemoryRunEventLog(max_events, ttl)
    return RedisRunEventLog(redis, prefix, max_events, ttl)
