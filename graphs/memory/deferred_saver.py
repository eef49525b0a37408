"""Checkpoint writes held back until a group of runs has all succeeded, so that a batch is
stored all or nothing.

A run is lent a `DeferredSaver` through `configurable[CONFIG_KEY_CHECKPOINTER]` (LangGraph's
own key for a saver other than the graph's, `Pregel._resolve_checkpointer`): it reads its
thread from the real saver and records what it would write. `DeferredWrites.commit` replays
the records into the real saver once every run succeeded; `discard` drops them. Made for
sessions' runs, which checkpoint once, at their end (`durability="exit"`), and never read back
what they wrote. The group also keeps each run's session lock until then (the write checks
it), so no other turn can run on a session between its run and its write.

With `through`, a run's writes are not held back but made as they come (a background run's,
checkpointed every step so another worker can take it over); the locks are still kept until
`discard`, so the run can record its outcome before its thread is free.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)

from graphs.memory.session_lock import HeldLock, let_go_all

Write = Callable[[], Awaitable[Any]]


class DeferredWrites:
    """The checkpoint writes of a group of runs, by thread, and the session locks they hold."""

    def __init__(self, *, through: bool = False) -> None:
        self.through = through
        self._writes: dict[str, list[Write]] = defaultdict(list)
        self._locks: list[HeldLock] = []

    def saver(self, inner: BaseCheckpointSaver[Any]) -> DeferredSaver:
        return DeferredSaver(inner, self)

    def record(self, config: RunnableConfig, write: Write) -> None:
        self._writes[str(config["configurable"]["thread_id"])].append(write)

    def hold(self, lock: HeldLock) -> None:
        """Keep `lock` (its lease renewed) until the writes are committed or discarded."""
        self._locks.append(lock)

    async def commit(self) -> None:
        """Write every thread's records, in the order its run made them, then let the locks
        go. Shielded: once started, a cancellation (the client leaving) cannot stop it half
        way."""
        await asyncio.shield(self._write_all())

    async def _write_all(self) -> None:
        try:
            await self.write_holding()
        finally:
            await self.discard()

    async def write_holding(self) -> None:
        """Write every thread's records, keeping the locks (a run that records its outcome
        before it lets its thread go); shielded, as `commit`."""
        writes, self._writes = self._writes, defaultdict(list)
        replays = (replay(thread_writes) for thread_writes in writes.values())
        await asyncio.shield(asyncio.gather(*replays))

    async def discard(self) -> None:
        """Drop what is not written and let the locks go."""
        self._writes.clear()
        locks, self._locks = self._locks, []
        await let_go_all(locks)


async def replay(writes: list[Write]) -> None:
    for write in writes:
        await write()


class DeferredSaver(BaseCheckpointSaver[Any]):
    """Reads from `inner`; records `aput` and `aput_writes` in `writes` instead of writing."""

    def __init__(self, inner: BaseCheckpointSaver[Any], writes: DeferredWrites) -> None:
        super().__init__(serde=inner.serde)
        self._inner = inner
        self._writes = writes

    def get_next_version(self, current: Any, channel: None) -> Any:
        return self._inner.get_next_version(current, channel)

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await self._inner.aget_tuple(config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        async for found in self._inner.alist(config, filter=filter, before=before, limit=limit):
            yield found

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Record the write; the config the real saver would return (the checkpoint's id)."""

        async def write() -> RunnableConfig:
            return await self._inner.aput(config, checkpoint, metadata, new_versions)

        if self._writes.through:
            return await write()
        self._writes.record(config, write)
        configurable = config["configurable"]
        return {
            "configurable": {
                "thread_id": configurable["thread_id"],
                "checkpoint_ns": configurable.get("checkpoint_ns", ""),
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
        held = list(writes)

        async def write() -> None:
            await self._inner.aput_writes(config, held, task_id, task_path)

        if self._writes.through:
            await write()
            return
        self._writes.record(config, write)


async def restore(
    saver: BaseCheckpointSaver[Any], config: RunnableConfig, before: CheckpointTuple | None
) -> None:
    """Put the thread back as `before` found it (a rolled-back run whose writes were made as
    they came): its checkpoint, every channel's value and its pending writes (an interrupt's);
    no checkpoint at all if it had none."""
    configurable = config["configurable"]
    if before is None:
        await saver.adelete_thread(str(configurable["thread_id"]))
        return
    parent = (before.parent_config or {}).get("configurable", {}).get("checkpoint_id")
    at: RunnableConfig = {**config, "configurable": {**configurable, "checkpoint_id": parent}}
    checkpoint = before.checkpoint
    written = await saver.aput(at, checkpoint, before.metadata, checkpoint["channel_versions"])
    by_task: dict[str, list[tuple[str, Any]]] = defaultdict(list)
    for task_id, channel, value in before.pending_writes or []:
        by_task[task_id].append((channel, value))
    target: RunnableConfig = {
        **config,
        "configurable": {**configurable, **written["configurable"]},
    }
    for task_id, writes in by_task.items():
        await saver.aput_writes(target, writes, task_id)
