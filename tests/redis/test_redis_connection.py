"""graphgate's Redis connections against the real Redis: a command cancelled while it is sent
ends cancelled, and a command whose connection dies under it is sent once more on a fresh
one, the scripts that take something taking it once. A TCP relay between the client and Redis
cuts one connection at the chosen moment, as a Redis restart or a proxy's idle timeout does to
a pooled connection."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from redis.asyncio import Redis

from graphs.limits.concurrency import RedisLeasePool
from graphs.memory.session_lock import RedisSessionLocks
from graphs.settings import Settings
from graphs.store.redis_client import build_redis


@dataclass
class Relay:
    """Relays loopback TCP to Redis. `cut` decides what happens to the next command sent:
    `before` closes the client's connection without passing it on; `after` passes it on
    and closes the client's connection instead of returning the reply."""

    target: tuple[str, int]
    cut: str | None = None
    cuts: int = 0
    port: int = 0

    async def serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        redis_r, redis_w = await asyncio.open_connection(*self.target)
        try:
            while data := await client_r.read(65536):
                cut, self.cut = self.cut, None
                if cut is not None:
                    self.cuts += 1
                if cut == "before":
                    return
                redis_w.write(data)
                await redis_w.drain()
                reply = await redis_r.read(65536)
                if cut == "after":
                    return
                client_w.write(reply)
                await client_w.drain()
        finally:
            client_w.close()
            redis_w.close()


@contextlib.asynccontextmanager
async def relayed(redis_url: str) -> AsyncIterator[tuple[Relay, Redis]]:
    url = urlsplit(redis_url)
    relay = Relay((url.hostname or "127.0.0.1", url.port or 6379))
    server = await asyncio.start_server(relay.serve, "127.0.0.1", 0)
    relay.port = server.sockets[0].getsockname()[1]
    redis = build_redis(Settings(redis_url=f"redis://127.0.0.1:{relay.port}/0"))
    assert isinstance(redis, Redis)
    try:
        await redis.ping()  # one pooled connection, as a running server has
        yield relay, redis
    finally:
        await redis.aclose()
        server.close()


async def test_a_command_cancelled_at_any_point_of_its_send_ends_cancelled(redis_url: str) -> None:
    redis = build_redis(Settings(redis_url=redis_url))
    assert redis is not None
    await redis.ping()
    swallowed = []
    try:
        for steps in range(60):
            command = asyncio.ensure_future(redis.set("cancelled-send", "1"))
            for _ in range(steps):
                await asyncio.sleep(0)  # let the command get that far into its send
            accepted = command.cancel()
            await asyncio.gather(command, return_exceptions=True)
            if accepted and not command.cancelled():
                swallowed.append(steps)
    finally:
        await redis.aclose()
    assert swallowed == [], "cancelled commands that ran on as if not cancelled"


async def test_a_command_whose_connection_dies_before_redis_sees_it_is_sent_again(
    redis_url: str, marker: str
) -> None:
    async with relayed(redis_url) as (relay, redis):
        relay.cut = "before"
        await redis.set(f"retry:{marker}", "1")
        assert relay.cuts == 1
        assert await redis.get(f"retry:{marker}") == b"1"


async def test_a_transaction_whose_connection_dies_is_sent_again_and_applied_once(
    redis_url: str, marker: str
) -> None:
    async with relayed(redis_url) as (relay, redis):
        relay.cut = "before"
        async with redis.pipeline(transaction=True) as pipe:
            pipe.incrby(f"retry:tx:{marker}", 5)
            pipe.expire(f"retry:tx:{marker}", 60)
            await pipe.execute()
        assert relay.cuts == 1
        assert await redis.get(f"retry:tx:{marker}") == b"5"


async def test_a_session_lock_whose_reply_was_lost_is_still_taken_once(
    redis_url: str, marker: str
) -> None:
    async with relayed(redis_url) as (relay, redis):
        locks = RedisSessionLocks(redis, f"retry:{marker}:", lease_seconds=30, fence_ttl=60)
        await locks.acquire("warm-up", wait=0)  # the script is loaded before the cut
        relay.cut = "after"
        lease = await locks.acquire("t", wait=0)
        assert relay.cuts == 1
        assert lease is not None, "the retry found its own lock and called it busy"
        assert await redis.get(f"retry:{marker}:session_fence:{{t}}") == b"1"
        await lease.release()
        assert await redis.exists(locks.lock_key("t")) == 0


async def test_a_concurrency_slot_whose_reply_was_lost_is_taken_once(
    redis_url: str, marker: str
) -> None:
    async with relayed(redis_url) as (relay, redis):
        prefix = f"retry:{marker}:"
        pool = RedisLeasePool(redis, prefix, limit=1, ttl_seconds=30, stripes=1)
        warm = await pool.acquire(within=0)  # the script is loaded before the cut
        assert warm is not None
        await pool.release(warm)
        relay.cut = "after"
        lease = await pool.acquire(within=0)
        assert relay.cuts == 1
        assert lease is not None, "the retry found its own slot and called the pool full"
        assert await redis.zcard(f"{prefix}concurrency:{{0}}") == 1
