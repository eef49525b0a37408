"""The one Redis client of a process, with a bounded, blocking connection pool.

redis-py's default pool raises "Too many connections" at its limit; under load a request
should wait briefly for a connection instead of failing. Connecting and every reply are
bounded too: a Redis that stops answering (a partition, not a refusal) would otherwise hold a
request forever; with the bounds it gets 503 `unavailable`.

A command that fails with a connection error is sent once more on a fresh connection: a
pooled connection can die under a command (a Redis restart or failover, a proxy's idle
timeout), and the Redis drill saw such commands fail seconds after Redis was back. redis-py's
own default client retries three times with backoff of up to seconds; one immediate retry
keeps a refused or loading Redis a fast 503. A timeout is not retried, so a Redis that hangs
costs one `REDIS_SOCKET_TIMEOUT`, not two. The scripts that take something (a session lock, a
concurrency slot) are idempotent for their holder, so a retry after a lost reply takes it
once; a counter's increment whose reply was lost may count twice.

With `REDIS_CLUSTER=true` the client is redis-py's cluster client (`cluster_client.py`): it
finds the masters from the configured node, sends each command to the master of its key's
slot, and follows the cluster through a failover. Every key graphgate writes carries a hash
tag, so the keys of one script or pipeline always share a slot. Its one retry also follows a
timeout (redis-py maps the cluster again first), so on a cluster a shard that hangs costs up
to twice `REDIS_SOCKET_TIMEOUT`.
"""

from __future__ import annotations

import logging
from typing import TypeAlias, cast
from urllib.parse import urlsplit

from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError

from graphs.errors import RETRY_STORE_SECONDS, Unavailable
from graphs.settings import Settings
from graphs.store.cluster_client import ConnectionGate, GatedCluster
from graphs.store.redis_connection import BY_SCHEME

logger = logging.getLogger(__name__)

RedisClient: TypeAlias = Redis | RedisCluster
# What a Redis call can raise when Redis cannot answer: the cluster client's own errors
# ("slots not covered" during a failover, no reachable node) are not `RedisError`s.
REDIS_FAILURES: tuple[type[Exception], ...] = (RedisError, RedisClusterException, OSError)


def store_unavailable(exc: BaseException, store: str = "Session and limit storage") -> Unavailable:
    """A Redis failure as the client sees it, wherever it is met (a route, a stream, the key
    store that authentication asks): 503 with Retry-After; logged here, without the command's
    data."""
    logger.error("%s (redis) failed: %s: %s", store, type(exc).__name__, exc)
    message = f"{store} is unavailable; try again shortly."
    return Unavailable(message, retry_after=RETRY_STORE_SECONDS)


def build_redis(settings: Settings) -> RedisClient | None:
    """A client for the configured Redis, or None in embedded mode. Does not connect."""
    url = settings.resolved_redis_url
    if url is None:
        return None
    if settings.redis_cluster:
        return build_cluster(url, settings)
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_pool_timeout,
        socket_connect_timeout=settings.redis_connect_timeout,
        socket_timeout=settings.redis_socket_timeout,
        retry=Retry(NoBackoff(), retries=1, supported_errors=(RedisConnectionError,)),
    )
    # Set after `from_url`, whose URL options (TLS, unix socket) override a class passed in.
    pool.connection_class = BY_SCHEME[urlsplit(url).scheme]
    return Redis(connection_pool=pool)


def build_cluster(url: str, settings: Settings) -> GatedCluster:
    """The cluster client: one retry after a connection error or a failover's "cluster down",
    on a refreshed map of the slots, as the single-node client retries once."""
    cluster = GatedCluster.from_url(
        url,
        gate=ConnectionGate(settings.redis_max_connections, settings.redis_pool_timeout),
        # Twice the gate: after a failover a node's replaced connections still count against
        # its limit until they are closed (redis-py issue 3929).
        max_connections=2 * settings.redis_max_connections,
        socket_connect_timeout=settings.redis_connect_timeout,
        socket_timeout=settings.redis_socket_timeout,
        retry=Retry(NoBackoff(), retries=1),
    )
    assert isinstance(cluster, GatedCluster)
    connection_class = cast("type[Connection]", BY_SCHEME[urlsplit(url).scheme])
    # Nodes found later are built from these arguments; the seed node exists already.
    cluster.connection_kwargs["connection_class"] = connection_class
    for node in cluster.startup_nodes:
        node.connection_class = connection_class
    return cluster


def required_modules(settings: Settings) -> dict[str, str]:
    """The Redis modules the configured features need, each with the feature: only the
    semantic cache (RedisVL's vector index) needs one. Sessions, limits, budgets, usage, the
    exact cache and the leases run on any Redis 7 or later, managed offerings included."""
    if settings.cache_mode == "semantic":
        return {"search": "the semantic cache (CACHE_MODE=semantic)"}
    return {}


async def missing_modules(redis: RedisClient, needed: dict[str, str]) -> dict[str, str]:
    """Which of the `needed` modules (name -> the feature that needs it) this Redis lacks."""
    if not needed:
        return {}
    loaded = {bytes(module[b"name"]).decode() for module in await redis.module_list()}
    return {name: feature for name, feature in needed.items() if name not in loaded}


def describe_missing(missing: dict[str, str]) -> str:
    return "; ".join(f"module {name}, for {feature}" for name, feature in missing.items())
