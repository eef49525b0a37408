"""A write that is acknowledged only once Redis replicas hold it (`REDIS_WAIT_REPLICAS`).

Redis replicates asynchronously: a master acknowledges a write before its replicas have it, so
when the master fails and a replica takes over, the last writes can be gone. With
`REDIS_WAIT_REPLICAS=n` the turn's checkpoint write is followed by `WAIT n timeout` on the same
connection (WAIT counts the writes of its own connection), and a turn whose write did not reach
n replicas within `REDIS_WAIT_TIMEOUT` is not acknowledged: the client gets 503 `unavailable`
and is told the turn may have been stored.

On a cluster both commands go as one batch on one connection of the key's master, not through
redis-py's cluster pipeline: that pipeline re-sends a redirected command alone on another
connection, and on a retry routes WAIT to its default node, where WAIT would confirm writes it
never saw. A redirect or a lost connection here fails the turn with 503 instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import RedisCluster
from redis.asyncio.cluster import PipelineCommand
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, SlotNotCoveredError

from graphs.errors import RETRY_BUSY_SECONDS, Unavailable
from graphs.store.cluster_client import GatedCluster
from graphs.store.redis_client import RedisClient


@dataclass(frozen=True)
class Replication:
    replicas: int = 0
    timeout_ms: int = 1000


NO_WAIT = Replication()


def not_replicated(replication: Replication, acked: int) -> Unavailable:
    return Unavailable(
        f"The turn reached {acked} of REDIS_WAIT_REPLICAS={replication.replicas} Redis "
        "replica(s) in time, so it is not acknowledged; it may still be in the session. "
        "Read the session before sending the turn again.",
        retry_after=RETRY_BUSY_SECONDS,
    )


async def run_replicated(
    redis: RedisClient,
    script: AsyncScript,
    keys: list[str],
    args: list[Any],
    replication: Replication,
) -> Any:
    """`script`'s result once `replication.replicas` replicas have its writes."""
    if not replication.replicas:
        return await script(keys=keys, args=args)
    wait = ("WAIT", replication.replicas, replication.timeout_ms)
    for _ in range(2):  # the second time after loading a script this master had not seen
        run = ("EVALSHA", script.sha, len(keys), *keys, *args)
        if isinstance(redis, RedisCluster):
            result, acked = await on_the_keys_master(redis, keys[0], run, wait)
        else:
            async with redis.pipeline(transaction=False) as pipe:
                pipe.execute_command(*run)
                pipe.execute_command(*wait)
                result, acked = await pipe.execute(raise_on_error=False)
        if isinstance(result, NoScriptError):
            await redis.script_load(script.script)
            continue
        for outcome in (result, acked):
            if isinstance(outcome, Exception):
                raise outcome
        if int(acked) < replication.replicas:
            raise not_replicated(replication, int(acked))
        return result
    raise NoScriptError("the script vanished from Redis as soon as it was loaded")


async def on_the_keys_master(
    cluster: RedisCluster, key: str, *commands: tuple[Any, ...]
) -> list[Any]:
    """Each command's reply (or error), sent together on one connection of `key`'s master."""
    await cluster.initialize()  # a no-op once the cluster is mapped
    master = cluster.get_node_from_key(key)
    if master is None:
        raise SlotNotCoveredError("No master serves this session's slot (a failover?).")
    batch = [PipelineCommand(position, *command) for position, command in enumerate(commands)]
    assert isinstance(cluster, GatedCluster)
    async with cluster.gate.turn():
        await master.execute_pipeline(batch)
    return [command.result for command in batch]
