"""A write that is acknowledged only once Redis replicas hold it (`REDIS_WAIT_REPLICAS`).

Redis replicates asynchronously: a master acknowledges a write before its replicas have it, so
when the master fails and a replica takes over, the last writes can be gone. With
`REDIS_WAIT_REPLICAS=n` the turn's checkpoint write is followed by `WAIT n timeout` on the same
connection (WAIT counts the writes of its own connection, hence one pipeline to the key's
master), and a turn whose write did not reach n replicas within `REDIS_WAIT_TIMEOUT` is not
acknowledged: the client gets 503 `unavailable` and is told the turn may have been stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from graphs.errors import Unavailable
from graphs.runtime.redis_client import RedisClient

RETRY_AFTER_SECONDS = 1.0


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
        retry_after=RETRY_AFTER_SECONDS,
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
        async with redis.pipeline(transaction=False) as pipe:
            # As a raw command: redis-py refuses `evalsha` in a cluster pipeline, not the command.
            pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
            if isinstance(redis, RedisCluster):
                await redis.initialize()  # a no-op once the cluster is mapped
                master = redis.get_node_from_key(keys[0])
                pipe.execute_command(*wait, target_nodes=master)
            else:
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
