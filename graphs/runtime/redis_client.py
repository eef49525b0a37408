"""The one Redis client of a process, with a bounded, blocking connection pool.

redis-py's default pool raises "Too many connections" at its limit; under load a request
should wait briefly for a connection instead of failing. Connecting and every reply are
bounded too: a Redis that stops answering (a partition, not a refusal) would otherwise hold a
request forever; with the bounds it gets 503 `unavailable`.
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

from graphs.runtime.settings import Settings


def build_redis(settings: Settings) -> Redis | None:
    """A client for the configured Redis, or None in embedded mode. Does not connect."""
    url = settings.resolved_redis_url
    if url is None:
        return None
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_pool_timeout,
        socket_connect_timeout=settings.redis_connect_timeout,
        socket_timeout=settings.redis_socket_timeout,
    )
    return Redis(connection_pool=pool)


REQUIRED_MODULES = ("search", "ReJSON")


async def missing_modules(redis: Redis) -> list[str]:
    """The Redis modules graphgate needs (Query Engine, JSON) that this server lacks."""
    loaded = {bytes(module[b"name"]).decode() for module in await redis.module_list()}
    return [name for name in REQUIRED_MODULES if name not in loaded]
