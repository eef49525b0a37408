"""The LangGraph API's thread and run records, per principal, in Redis or in memory.

A thread's state is its checkpoint (the session checkpointer's, under the thread id
`<principal>:<route>:<thread>`); its record holds what the API adds: times, metadata (with the
`graph_id` of its first run), the outcome of its last run. A run's record holds its status.
Every key lives in its principal's hash slot (`graphs/store/keys.py`), so the record, the
principal's index and the thread's run set are one slot on Redis Cluster, and every key
expires after `SESSION_TTL` without a write, as the checkpoint does without a read or write.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, Protocol, TypeVar

from graphs.store.keys import RedisKeys
from graphs.store.redis_client import RedisClient

ThreadOutcome = Literal["idle", "error", "interrupted"]
RunStatus = Literal["pending", "running", "success", "error", "interrupted"]
# A cancelled run keeps what it did (`interrupt`), or leaves no trace (`rollback`).
CancelAction = Literal["interrupt", "rollback"]
PAGE = 100
Record = TypeVar("Record")


@dataclass(frozen=True)
class StoredThread:
    thread_id: str
    created_at: float
    updated_at: float
    metadata: dict[str, Any] = field(default_factory=dict)
    outcome: ThreadOutcome = "idle"  # its last run's; `busy` is read from its session lock
    error: str | None = None

    def touched(self, **changes: Any) -> StoredThread:
        return replace(self, updated_at=time.time(), **changes)


@dataclass(frozen=True)
class StoredRun:
    run_id: str
    thread_id: str
    assistant_id: str
    created_at: float
    updated_at: float
    status: RunStatus = "pending"
    metadata: dict[str, Any] = field(default_factory=dict)
    multitask_strategy: str | None = None
    # What it was asked to run (the request's input, command, config and stream options): a
    # background run is started again from them when its worker dies before its first step.
    kwargs: dict[str, Any] = field(default_factory=dict)
    # A stateless background run's last values (JSON), kept for `join` once its thread is gone.
    output: Any = None

    def moved(self, status: RunStatus) -> StoredRun:
        return replace(self, status=status, updated_at=time.time())


class ThreadRecords(Protocol):
    async def create(self, principal: str, thread: StoredThread) -> bool:
        """Store a new thread; False when the principal has one by that id."""

    async def put(self, principal: str, thread: StoredThread) -> None: ...

    async def get(self, principal: str, thread_id: str) -> StoredThread | None: ...

    async def delete(self, principal: str, thread_id: str) -> bool:
        """Delete the thread's record and its runs' (their records, cancel flags and kept
        events); False when there was none."""

    def newest_first(self, principal: str) -> AsyncIterator[StoredThread]: ...

    async def put_run(self, principal: str, run: StoredRun) -> None: ...

    async def get_run(self, principal: str, run_id: str) -> StoredRun | None: ...

    async def runs_of(self, principal: str, thread_id: str) -> list[StoredRun]: ...

    async def delete_run(self, principal: str, run: StoredRun) -> None: ...

    async def ask_to_cancel(self, principal: str, run_id: str, action: CancelAction) -> None:
        """Ask whichever worker runs the run to cancel it (`cancel_asked`)."""

    async def cancel_asked(self, principal: str, run_id: str) -> CancelAction | None:
        """What a `/cancel` that reached another worker asked of the run, if anything."""


def encoded(record: StoredThread | StoredRun) -> str:
    return json.dumps(asdict(record), separators=(",", ":"))


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisThreadRecords:
    def __init__(self, redis: RedisClient, prefix: str, ttl_seconds: int) -> None:
        self._redis = redis
        self._keys = RedisKeys(prefix)
        self._ttl = ttl_seconds

    async def create(self, principal: str, thread: StoredThread) -> bool:
        key = self._keys.thread_record(principal, thread.thread_id)
        if not await self._redis.set(key, encoded(thread), ex=self._ttl, nx=True):
            return False
        await self._index(principal, thread)
        return True

    async def put(self, principal: str, thread: StoredThread) -> None:
        key = self._keys.thread_record(principal, thread.thread_id)
        await self._redis.set(key, encoded(thread), ex=self._ttl)
        await self._index(principal, thread)

    async def _index(self, principal: str, thread: StoredThread) -> None:
        index = self._keys.thread_index(principal)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(index, {thread.thread_id: thread.updated_at})
            pipe.expire(index, self._ttl)
            await pipe.execute()

    async def get(self, principal: str, thread_id: str) -> StoredThread | None:
        key = self._keys.thread_record(principal, thread_id)
        stored = await self._redis.getex(key, ex=self._ttl)
        return None if stored is None else StoredThread(**json.loads(stored))

    async def delete(self, principal: str, thread_id: str) -> bool:
        runs_key = self._keys.thread_runs(principal, thread_id)
        runs = [text(run) for run in await self._redis.smembers(runs_key)]
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.delete(self._keys.thread_record(principal, thread_id))
            pipe.zrem(self._keys.thread_index(principal), thread_id)
            pipe.delete(runs_key, *(self._keys.run_record(principal, run) for run in runs))
            pipe.delete(*(self._keys.run_cancel(principal, run) for run in runs or ["-"]))
            pipe.delete(*(self._keys.run_events(principal, run) for run in runs or ["-"]))
            deleted, *_ = await pipe.execute()
        return bool(deleted)

    async def newest_first(self, principal: str) -> AsyncIterator[StoredThread]:
        index = self._keys.thread_index(principal)
        start = 0
        while ids := [text(i) for i in await self._redis.zrevrange(index, start, start + PAGE - 1)]:
            stored = await self._redis.mget([self._keys.thread_record(principal, i) for i in ids])
            expired = [i for i, record in zip(ids, stored, strict=True) if record is None]
            if expired:  # their records expired: the index forgets them as it meets them
                await self._redis.zrem(index, *expired)
            for record in stored:
                if record is not None:
                    yield StoredThread(**json.loads(record))
            start += PAGE - len(expired)

    async def put_run(self, principal: str, run: StoredRun) -> None:
        runs_key = self._keys.thread_runs(principal, run.thread_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(self._keys.run_record(principal, run.run_id), encoded(run), ex=self._ttl)
            pipe.sadd(runs_key, run.run_id)
            pipe.expire(runs_key, self._ttl)
            await pipe.execute()

    async def get_run(self, principal: str, run_id: str) -> StoredRun | None:
        stored = await self._redis.get(self._keys.run_record(principal, run_id))
        return None if stored is None else StoredRun(**json.loads(stored))

    async def runs_of(self, principal: str, thread_id: str) -> list[StoredRun]:
        ids = await self._redis.smembers(self._keys.thread_runs(principal, thread_id))
        keys = [self._keys.run_record(principal, text(run)) for run in ids]
        stored = await self._redis.mget(keys) if keys else []
        return [StoredRun(**json.loads(record)) for record in stored if record is not None]

    async def delete_run(self, principal: str, run: StoredRun) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.delete(self._keys.run_record(principal, run.run_id))
            pipe.delete(self._keys.run_cancel(principal, run.run_id))
            pipe.delete(self._keys.run_events(principal, run.run_id))
            pipe.srem(self._keys.thread_runs(principal, run.thread_id), run.run_id)
            await pipe.execute()

    async def ask_to_cancel(self, principal: str, run_id: str, action: CancelAction) -> None:
        await self._redis.set(self._keys.run_cancel(principal, run_id), action, ex=self._ttl)

    async def cancel_asked(self, principal: str, run_id: str) -> CancelAction | None:
        asked = await self._redis.get(self._keys.run_cancel(principal, run_id))
        return None if asked is None else ("rollback" if text(asked) == "rollback" else "interrupt")


def unexpired(
    records: dict[tuple[str, str], tuple[float, Record]], key: tuple[str, str]
) -> Record | None:
    """The record under `key`, unless its time is up (then it is forgotten)."""
    kept = records.get(key)
    if kept is None or kept[0] < time.monotonic():
        records.pop(key, None)
        return None
    return kept[1]


class MemoryThreadRecords:
    """Embedded twin: records in this process, forgotten `ttl_seconds` after their last write
    (a thread's also after its last read), as Redis expires them."""

    def __init__(self, ttl_seconds: int) -> None:
        self._ttl = ttl_seconds
        self._threads: dict[tuple[str, str], tuple[float, StoredThread]] = {}
        self._runs: dict[tuple[str, str], tuple[float, StoredRun]] = {}

    def _live_thread(self, principal: str, thread_id: str) -> StoredThread | None:
        return unexpired(self._threads, (principal, thread_id))

    async def create(self, principal: str, thread: StoredThread) -> bool:
        if self._live_thread(principal, thread.thread_id) is not None:
            return False
        await self.put(principal, thread)
        return True

    async def put(self, principal: str, thread: StoredThread) -> None:
        self._threads[(principal, thread.thread_id)] = (time.monotonic() + self._ttl, thread)

    async def get(self, principal: str, thread_id: str) -> StoredThread | None:
        thread = self._live_thread(principal, thread_id)
        if thread is not None:
            await self.put(principal, thread)
        return thread

    async def delete(self, principal: str, thread_id: str) -> bool:
        found = self._live_thread(principal, thread_id) is not None
        self._threads.pop((principal, thread_id), None)
        for key, (_, run) in list(self._runs.items()):
            if key[0] == principal and run.thread_id == thread_id:
                del self._runs[key]
        return found

    async def newest_first(self, principal: str) -> AsyncIterator[StoredThread]:
        owned = [key[1] for key in self._threads if key[0] == principal]
        live = [t for i in owned if (t := self._live_thread(principal, i)) is not None]
        for thread in sorted(live, key=lambda t: t.updated_at, reverse=True):
            yield thread

    async def put_run(self, principal: str, run: StoredRun) -> None:
        self._runs[(principal, run.run_id)] = (time.monotonic() + self._ttl, run)

    async def get_run(self, principal: str, run_id: str) -> StoredRun | None:
        return unexpired(self._runs, (principal, run_id))

    async def runs_of(self, principal: str, thread_id: str) -> list[StoredRun]:
        owned = [key for key in self._runs if key[0] == principal]
        runs = [run for key in owned if (run := unexpired(self._runs, key)) is not None]
        return [run for run in runs if run.thread_id == thread_id]

    async def delete_run(self, principal: str, run: StoredRun) -> None:
        self._runs.pop((principal, run.run_id), None)

    async def ask_to_cancel(self, principal: str, run_id: str, action: CancelAction) -> None:
        """Embedded: one process, whose runs `/cancel` stops itself; nothing to pass on."""

    async def cancel_asked(self, principal: str, run_id: str) -> CancelAction | None:
        return None


def build_thread_records(redis: RedisClient | None, prefix: str, ttl: int) -> ThreadRecords:
    return MemoryThreadRecords(ttl) if redis is None else RedisThreadRecords(redis, prefix, ttl)
