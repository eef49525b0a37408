"""redis-py's Redis Cluster client, with commands that wait for a free connection.

The async cluster client keeps a pool per node that raises `MaxConnectionsError` at its limit
instead of waiting (redis-py issues 2522 and 3135; a blocking pool exists only for the
single-node client). Under load that would turn a burst into errors, as the single-node pool
did before we made it blocking. Here a process-wide gate of `REDIS_MAX_CONNECTIONS` admits
commands and pipelines, waiting up to `REDIS_POOL_TIMEOUT` for a turn: a node then never
needs more connections than the gate admits, so its own limit is never reached.

A command also waits for the map of the cluster (the first one, and after a failover the
refreshed one) before it is sent: redis-py 8.1 maps the cluster inside the first command, and
with commands already queued behind it a fifth of a burst of first commands failed with
"Connection lost" here; commands that wait for the finished map all succeed.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError

# Set while a task holds the gate: a pipeline's redirected command re-enters the client.
_holding = contextvars.ContextVar("graphgate_cluster_gate", default=False)


class ConnectionGate:
    def __init__(self, size: int, timeout: float) -> None:
        self._slots = asyncio.Semaphore(size)
        self._timeout = timeout

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        if _holding.get():
            yield
            return
        try:
            async with asyncio.timeout(self._timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise RedisConnectionError("No connection available.") from None
        reset = _holding.set(True)
        try:
            yield
        finally:
            _holding.reset(reset)
            self._slots.release()


class GatedCluster(RedisCluster):
    """A `RedisCluster` whose commands and pipelines pass `gate` first."""

    def __init__(self, *args: Any, gate: ConnectionGate, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = gate

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self.gate.turn():
            if self._initialize:
                await self.initialize()
            return await super().execute_command(*args, **kwargs)

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> Any:
        if shard_hint:
            return super().pipeline(transaction, shard_hint)  # refused by redis-py
        # redis-py's stubs call the pipeline abstract; redis-py builds its own the same way.
        return GatedPipeline(self, transaction)  # type: ignore[abstract]


class GatedPipeline(ClusterPipeline):
    cluster_client: GatedCluster

    async def execute(
        self, raise_on_error: bool = True, allow_redirections: bool = True
    ) -> list[Any]:
        client = self.cluster_client
        async with client.gate.turn():
            if client._initialize:
                await client.initialize()
            return await super().execute(raise_on_error, allow_redirections)
