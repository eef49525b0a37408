"""The LangGraph API's thread and run records on every Redis flavour (Stack, no modules,
Cluster) and in memory: a principal sees only its own, newest first; deleting a thread deletes
its runs and leaves no key; every key expires; an expired thread leaves the index as it is met.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import pytest

from graphs.memory.thread_records import (
    MemoryThreadRecords,
    RedisThreadRecords,
    StoredRun,
    StoredThread,
    ThreadRecords,
)
from graphs.store.redis_client import RedisClient
from tests.conftest import REDIS_FLAVOURS
from tests.redis_servers import RedisFlavours

TTL = 60


@pytest.fixture
def prefix() -> str:
    return f"test-threads-{uuid.uuid4().hex[:10]}:"


def a_thread(updated: float, **metadata: str) -> StoredThread:
    return StoredThread(str(uuid.uuid4()), updated, updated, dict(metadata))


async def listed(records: ThreadRecords, principal: str) -> list[str]:
    return [thread.thread_id async for thread in records.newest_first(principal)]


async def all_keys(redis: RedisClient, prefix: str) -> list[bytes]:
    return [key async for key in redis.scan_iter(match=f"{prefix}*", count=1000)]


@pytest.fixture(params=["memory", *REDIS_FLAVOURS])
async def records(
    request: pytest.FixtureRequest, redis_flavours: RedisFlavours, prefix: str
) -> AsyncIterator[ThreadRecords]:
    """The embedded twin, and the Redis store on each flavour."""
    if request.param == "memory":
        yield MemoryThreadRecords(TTL)
        return
    client = redis_flavours.async_client(request.param)
    yield RedisThreadRecords(client, prefix, TTL)
    await client.aclose()


async def test_a_principal_lists_only_its_own_threads_newest_first(
    records: ThreadRecords,
) -> None:
    old, new, theirs = a_thread(100.0), a_thread(200.0), a_thread(300.0)
    for principal, thread in (("ann", old), ("ann", new), ("bob", theirs)):
        assert await records.create(principal, thread)
    assert await listed(records, "ann") == [new.thread_id, old.thread_id]
    assert await records.get("bob", old.thread_id) is None
    assert not await records.create("ann", old)  # the id is taken
    await records.put("ann", old.touched(metadata={"k": "v"}))
    assert await listed(records, "ann") == [old.thread_id, new.thread_id]
    assert (await records.get("ann", old.thread_id)) == (await records.get("ann", old.thread_id))


async def test_deleting_a_thread_deletes_its_runs(records: ThreadRecords) -> None:
    thread = a_thread(time.time())
    await records.create("ann", thread)
    run = StoredRun(str(uuid.uuid4()), thread.thread_id, "agent", 1.0, 1.0, "running")
    await records.put_run("ann", run)
    await records.put_run("ann", run.moved("success"))
    assert (await records.get_run("ann", run.run_id)) is not None
    assert (await records.get_run("bob", run.run_id)) is None
    assert await records.delete("ann", thread.thread_id)
    assert await records.get_run("ann", run.run_id) is None
    assert await records.get("ann", thread.thread_id) is None
    assert not await records.delete("ann", thread.thread_id)
    assert await listed(records, "ann") == []


async def test_every_key_expires_and_a_deleted_thread_leaves_none(
    redis: RedisClient, prefix: str
) -> None:
    records = RedisThreadRecords(redis, prefix, TTL)
    thread = a_thread(time.time())
    await records.create("ann", thread)
    await records.put_run("ann", StoredRun("r1", thread.thread_id, "agent", 1.0, 1.0))
    keys = await all_keys(redis, prefix)
    assert len(keys) == 4  # the record, the index, the run and the thread's run set
    ttls = [await redis.ttl(key) for key in keys]
    assert all(0 < ttl <= TTL for ttl in ttls)
    await records.delete("ann", thread.thread_id)
    assert await all_keys(redis, prefix) == []


async def test_an_expired_thread_leaves_the_index_when_met(redis: RedisClient, prefix: str) -> None:
    records = RedisThreadRecords(redis, prefix, TTL)
    kept, gone = a_thread(1.0), a_thread(2.0)
    await records.create("ann", kept)
    await records.create("ann", gone)
    await redis.delete(f"{prefix}lg_thread:{{ann}}:{gone.thread_id}")  # as if expired
    assert await listed(records, "ann") == [kept.thread_id]
    assert await redis.zcard(f"{prefix}lg_threads:{{ann}}") == 1
