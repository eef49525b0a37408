"""graphgate's Redis checkpointer: each thread's latest checkpoint (and, if asked, a bounded
number of older ones) in one hash, plain Redis.

A chat session needs its latest state, not time travel; a LangGraph API thread keeps the last
`CHECKPOINT_HISTORY` (its clients regenerate an answer from the checkpoint before it). One hash
per thread,
`<prefix>checkpoint:{<thread>}` (the thread's hash slot, shared with its session lock), holds
for each checkpoint namespace the checkpoint with its metadata and parent, each channel's
value (written only when its version moves) and the pending writes of the latest checkpoint.
A turn reads it in one round trip (`HGETALL`, and the idle TTL renewed in the same pipeline,
`checkpoint_read.py`; an admitted turn's read rides on its admission's round trip) and writes
it in one script that first checks that the turn still holds its session's lock, so the check
and the write are one step. It needs no module (the stock saver of
langgraph-checkpoint-redis needs the Query Engine and JSON, and spent about 4 of the 13 ms of
CPU a turn cost in `make bench`), and deleting a thread deletes one key.

The hash's fields and the scripts that write it: `graphs/memory/checkpoint_hash.py`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    PendingWrite,
    get_checkpoint_id,
    get_serializable_checkpoint_metadata,
    writes_sort_key,
)
from redis.commands.core import AsyncScript

from graphs.memory.checkpoint_hash import (
    PUT_HISTORY_LUA,
    PUT_LUA,
    PUT_WRITES_LUA,
    SEP,
    decoded,
    field,
)
from graphs.memory.checkpoint_read import read_in
from graphs.memory.checkpoint_values import CheckpointValues
from graphs.memory.session_lock import lease_lost
from graphs.run_facts import facts_of
from graphs.store.keys import RedisKeys
from graphs.store.redis_client import RedisClient
from graphs.store.replicated_write import NO_WAIT, Replication, run_replicated
from graphs.store.round_trip import alone
from graphs.telemetry.tracer import tracing
from graphs.telemetry.trip_spans import trip_span


def fenced(written: int) -> None:
    """A fenced write's answer: 0 when the turn no longer held its session's lock."""
    if not written:
        raise lease_lost()


class BoundedRedisSaver(BaseCheckpointSaver[int]):
    """LangGraph's checkpointer contract over one Redis hash per thread, the last `keep`
    checkpoints (1: the latest only), with an idle TTL, writing only while the turn holds its
    session's lock."""

    def __init__(
        self,
        redis: RedisClient,
        prefix: str,
        ttl_seconds: float,
        replication: Replication = NO_WAIT,
        keep: int = 1,
        compact_messages: bool = True,
    ) -> None:
        super().__init__()
        self._codec = CheckpointValues(self.serde, compact_messages)
        self._redis = redis
        self._replication = replication
        self._keys = RedisKeys(prefix)
        self._ttl_ms = int(ttl_seconds * 1000)
        self.keep = keep
        self._put = redis.register_script(PUT_LUA if keep == 1 else PUT_HISTORY_LUA)
        self._put_writes = redis.register_script(PUT_WRITES_LUA)

    def key(self, thread_id: str) -> str:
        return self._keys.checkpoint(thread_id)

    def _fence(self, config: RunnableConfig, key: str) -> tuple[list[str], str]:
        """The script's KEYS and lock value: the turn's session lock, if it holds one."""
        held = facts_of(config).session_lock
        fence = held.fence if held is not None else None
        if fence is None:
            return [key, key], ""
        return [key, fence[0]], fence[1]

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        namespace = configurable.get("checkpoint_ns", "")
        prefetched = facts_of(config).checkpoint
        fields = prefetched.take(thread_id) if prefetched is not None else None
        if fields is None:
            key = self.key(thread_id)
            fields = (await alone(self._redis, lambda trip: read_in(trip, key, self._ttl_ms))).value
        return self._tuple(thread_id, namespace, fields, get_checkpoint_id(config))

    def _tuple(
        self, thread_id: str, namespace: str, fields: dict[str, bytes], wanted: str | None
    ) -> CheckpointTuple | None:
        record = fields.get(field("c", namespace))
        if record is None:
            return None
        checkpoint, metadata, parent_id = self._codec.load(record)
        if wanted is not None and wanted != checkpoint["id"]:
            older = fields.get(field("h", namespace, wanted))
            if older is None:
                return None  # not kept
            checkpoint, metadata, parent_id = self._codec.load(older)
        checkpoint["channel_values"] = self._values(fields, namespace, checkpoint)
        configurable = {"thread_id": thread_id, "checkpoint_ns": namespace}
        return CheckpointTuple(
            config={"configurable": {**configurable, "checkpoint_id": checkpoint["id"]}},
            checkpoint=checkpoint,
            metadata=metadata,
            parent_config=(
                {"configurable": {**configurable, "checkpoint_id": parent_id}}
                if parent_id
                else None
            ),
            pending_writes=self._pending(fields, field("w", namespace, checkpoint["id"], "")),
        )

    def _values(
        self, fields: dict[str, bytes], namespace: str, checkpoint: Checkpoint
    ) -> dict[str, Any]:
        """The checkpoint's channel values: the latest one's, or a value a later checkpoint
        replaced, kept under its version."""
        found = {}
        for channel, version in checkpoint["channel_versions"].items():
            stored = fields.get(field("v", namespace, channel))
            if stored is not None:
                latest_version, value = self._codec.load(stored)
                if latest_version == version:
                    found[channel] = value
                    continue
            kept = fields.get(field("o", namespace, channel, str(version)))
            if kept is not None:
                found[channel] = self._codec.load(kept)[1]
        return found

    def _kept(
        self, thread_id: str, namespace: str, fields: dict[str, bytes]
    ) -> list[CheckpointTuple]:
        """The namespace's kept checkpoints, newest first."""
        older = field("h", namespace, "")
        ids = sorted((n[len(older) :] for n in fields if n.startswith(older)), reverse=True)
        latest = self._tuple(thread_id, namespace, fields, None)
        kept = [self._tuple(thread_id, namespace, fields, i) for i in ids]
        return [t for t in [latest, *kept] if t is not None]

    def _pending(self, fields: dict[str, bytes], prefix: str) -> list[PendingWrite]:
        """The checkpoint's pending writes, in the order the run applies them."""
        writes = [
            (task_id, *self._codec.load(value), int(index))
            for name, value in fields.items()
            if name.startswith(prefix)
            for task_id, index in [name[len(prefix) :].split(SEP)]
        ]
        writes.sort(key=lambda w: writes_sort_key(w[3], w[0], w[4]))
        return [(task_id, channel, value) for task_id, channel, value, _, _ in writes]

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """The kept checkpoints of each namespace of the thread (of every thread when `config`
        is None), newest first, whose metadata matches `filter`."""
        if config is not None:
            threads: Iterable[str] = [str(config["configurable"]["thread_id"])]
        else:
            threads = [
                self._keys.thread_of_checkpoint(bytes(key).decode())
                async for key in self._redis.scan_iter(match=self._keys.checkpoint_pattern())
            ]
        wanted_ns = (config or {}).get("configurable", {}).get("checkpoint_ns")
        cutoff = str(get_checkpoint_id(before) or "") if before else ""
        listed = 0
        for thread_id in threads:
            fields = decoded(await self._redis.hgetall(self.key(thread_id)))
            for name in sorted(fields):
                kind, _, namespace = name.partition(SEP)
                if kind != "c" or (wanted_ns is not None and namespace != wanted_ns):
                    continue
                for found in self._kept(thread_id, namespace, fields):
                    if cutoff and found.checkpoint["id"] >= cutoff:
                        continue
                    if filter and any(found.metadata.get(k) != v for k, v in filter.items()):
                        continue
                    if limit is not None and listed >= limit:
                        return
                    listed += 1
                    yield found

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        namespace = configurable.get("checkpoint_ns", "")
        stored = {**checkpoint, "channel_values": {}}
        values = checkpoint["channel_values"]
        record = (
            stored,
            get_serializable_checkpoint_metadata(config, metadata),
            configurable.get("checkpoint_id"),
        )
        # A channel whose version moved without a value (cleared) keeps no stale value.
        live = [
            channel
            for channel in checkpoint["channel_versions"]
            if channel in values or channel not in new_versions
        ]
        changed: list[str | bytes] = []
        for channel, version in new_versions.items():
            if channel in values:
                changed += [
                    field("v", namespace, channel),
                    self._codec.dump_channel(version, values[channel]),
                ]
        key = self.key(thread_id)
        keys, holder = self._fence(config, key)
        args = [holder, self._ttl_ms, namespace, checkpoint["id"], self._codec.dump(record)]
        if self.keep > 1:
            versions = checkpoint["channel_versions"].items()
            args += [self.keep, SEP.join(f"{c}{SEP}{v}" for c, v in versions)]
        args += [len(live), *live, *changed]
        await self._write(config, self._put, keys, args, self._replication)
        return {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": namespace,
                "checkpoint_id": checkpoint["id"],
            }
        }

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        configurable = config["configurable"]
        namespace = configurable.get("checkpoint_ns", "")
        checkpoint_id = str(configurable["checkpoint_id"])
        triples: list[str | bytes | int] = []
        for index, (channel, value) in enumerate(writes):
            position = WRITES_IDX_MAP.get(channel, index)
            name = field("w", namespace, checkpoint_id, task_id, str(position))
            # A special write (error, interrupt, resume) replaces the one before it; a regular
            # one is kept as first written, as LangGraph's own savers do.
            triples += [
                int(channel in WRITES_IDX_MAP),
                name,
                self._codec.dump((channel, value, task_path)),
            ]
        key = self.key(str(configurable["thread_id"]))
        keys, holder = self._fence(config, key)
        await self._write(config, self._put_writes, keys, [holder, self._ttl_ms, *triples], NO_WAIT)

    async def _write(
        self,
        config: RunnableConfig,
        script: AsyncScript,
        keys: list[str],
        args: list[Any],
        replication: Replication,
    ) -> None:
        """Run a fenced write: queued in the turn's `ending` trip where it has one that is not
        sent yet (its lost lock then fails the turn when the trip is sent), else now (a write
        that comes after its turn has ended meets its released lock), acknowledged by
        `replication`'s replicas (a replicated write goes alone: WAIT counts its connection's
        writes)."""
        ending = facts_of(config).ending
        if ending is not None and not ending.closed and not replication.replicas:
            ending.script(script, keys, args, fenced, vital=True, part="checkpoint write")
            return
        write = run_replicated(self._redis, script, keys, args, replication)
        if tracing():
            with trip_span("checkpoint write", [], 1):
                written = await write
        else:
            written = await write
        if not written:
            raise lease_lost()

    async def athread_ids(self, prefix: str) -> list[str]:
        """The threads whose ids start with `prefix` (a SCAN of the keyspace: for an operator's
        listing, never a request's path)."""
        pattern = self._keys.checkpoint(prefix).removesuffix("}") + "*}"
        return [
            self._keys.thread_of_checkpoint(bytes(key).decode())
            async for key in self._redis.scan_iter(match=pattern, count=1000)
        ]

    async def adelete_thread(self, thread_id: str) -> None:
        await self._redis.delete(self.key(thread_id))
