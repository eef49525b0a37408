"""Session memory: a checkpointer that keeps the last few checkpoints of a thread, with an idle
TTL, in Redis (`graphs/memory/redis_saver.py`) or in memory.

A chat session needs its latest state, not time travel, so its saver keeps one checkpoint per
thread; a LangGraph API thread keeps the last `CHECKPOINT_HISTORY`. Either way memory stays
O(threads), not O(turns), and a thread idle for `SESSION_TTL` seconds disappears.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Protocol, runtime_checkable

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.checkpoint.memory import InMemorySaver

from graphs.memory.redis_saver import BoundedRedisSaver
from graphs.store.redis_client import RedisClient
from graphs.store.replicated_write import NO_WAIT, Replication


class BoundedMemorySaver(InMemorySaver):
    """Embedded twin of `BoundedRedisSaver`: the last `keep` checkpoints per thread, idle
    expiry."""

    def __init__(self, ttl_seconds: float, keep: int = 1) -> None:
        super().__init__()
        self.ttl_seconds = ttl_seconds
        self.keep = keep
        self._last_used: OrderedDict[str, float] = OrderedDict()
        self._blob_keys: dict[str, set[tuple[str, str, str, Any]]] = {}

    async def athread_ids(self, prefix: str) -> list[str]:
        """The threads whose ids start with `prefix` (a read of a thread leaves an empty entry in
        LangGraph's store: only those with a checkpoint count)."""
        self._expire_idle()
        return [
            thread
            for thread, namespaces in self.storage.items()
            if thread.startswith(prefix) and any(namespaces.values())
        ]

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        self._expire_idle()
        thread_id = config["configurable"]["thread_id"]
        if thread_id in self._last_used:
            self._touch(thread_id)
        return super().get_tuple(config)

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        saved = super().put(config, checkpoint, metadata, new_versions)
        thread_id = config["configurable"]["thread_id"]
        namespace = config["configurable"]["checkpoint_ns"]
        keys = self._blob_keys.setdefault(thread_id, set())
        keys.update((thread_id, namespace, ch, v) for ch, v in new_versions.items())
        self._drop_older_checkpoints(thread_id, namespace, checkpoint)
        self._touch(thread_id)
        self._expire_idle()
        return saved

    def delete_thread(self, thread_id: str) -> None:
        super().delete_thread(thread_id)
        self._last_used.pop(thread_id, None)
        self._blob_keys.pop(thread_id, None)

    def _drop_older_checkpoints(
        self, thread_id: str, namespace: str, checkpoint: Checkpoint
    ) -> None:
        stored = self.storage[thread_id][namespace]
        newest = sorted(stored, reverse=True)
        kept = [checkpoint["id"], *[i for i in newest if i != checkpoint["id"]][: self.keep - 1]]
        for checkpoint_id in [i for i in stored if i not in kept]:
            del stored[checkpoint_id]
            self.writes.pop((thread_id, namespace, checkpoint_id), None)
        live = {
            (channel, version)
            for checkpoint_id in kept
            for channel, version in self._versions(stored, checkpoint_id).items()
        }
        keys = self._blob_keys[thread_id]
        for key in [k for k in keys if k[1] == namespace and (k[2], k[3]) not in live]:
            keys.discard(key)
            self.blobs.pop(key, None)

    def _versions(self, stored: Any, checkpoint_id: str) -> dict[str, Any]:
        checkpoint: Checkpoint = self.serde.loads_typed(stored[checkpoint_id][0])
        return dict(checkpoint["channel_versions"])

    def _touch(self, thread_id: str) -> None:
        self._last_used[thread_id] = time.monotonic()
        self._last_used.move_to_end(thread_id)

    def _expire_idle(self) -> None:
        deadline = time.monotonic() - self.ttl_seconds
        while self._last_used:
            thread_id, last_used = next(iter(self._last_used.items()))
            if last_used > deadline:
                break
            self.delete_thread(thread_id)


@runtime_checkable
class ThreadListing(Protocol):
    async def athread_ids(self, prefix: str) -> list[str]: ...


async def build_checkpointer(
    redis: RedisClient | None,
    *,
    prefix: str,
    ttl_seconds: float,
    replication: Replication = NO_WAIT,
    keep: int = 1,
    compact_messages: bool = True,
) -> BaseCheckpointSaver[Any]:
    """The Redis saver of the last `keep` checkpoints when Redis is configured, else its memory
    twin."""
    if redis is None:
        return BoundedMemorySaver(ttl_seconds, keep)
    return BoundedRedisSaver(redis, prefix, ttl_seconds, replication, keep, compact_messages)
