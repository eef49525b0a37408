"""The bounded Redis saver keeps LangGraph's checkpointer contract on plain Redis: a real graph's
state survives, channels written turns ago are still there, pending writes come back in order,
namespaces stay apart, an older checkpoint beyond the bound is gone (each kept one comes back
with its own values), a thread stored latest-only is read on upgrade, a thread is deleted
whole, the idle TTL holds, and a turn that lost its session lock writes nothing."""

from __future__ import annotations

import operator
import signal
import uuid
from typing import Annotated, Any

import pytest
import redis as redis_sync
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import WRITES_IDX_MAP, empty_checkpoint
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from graphs.errors import SessionLeaseLost, Unavailable
from graphs.memory.redis_saver import BoundedRedisSaver
from graphs.memory.session_lock import HeldLock, RedisSessionLocks
from graphs.run_facts import with_facts
from graphs.store.redis_client import RedisClient
from graphs.store.replicated_write import Replication
from tests.redis_servers import RedisFlavours

PREFIX = "test-saver:"
ERROR = "__error__"
TTL = 600.0


@pytest.fixture
def saver(redis: RedisClient) -> BoundedRedisSaver:
    return BoundedRedisSaver(redis, PREFIX, TTL)


def decoded_names(fields: dict[Any, Any]) -> list[bytes]:
    return [bytes(name) for name in fields]


def thread() -> RunnableConfig:
    return {"configurable": {"thread_id": f"t-{uuid.uuid4().hex[:10]}", "checkpoint_ns": ""}}


class Counted(TypedDict, total=False):
    items: Annotated[list[str], operator.add]
    note: str


def counting_graph(saver: BoundedRedisSaver) -> Any:
    """`items` grows every turn; `note` is written on the first turn only."""

    def step(state: Counted) -> dict[str, Any]:
        update: dict[str, Any] = {"items": [f"turn {len(state.get('items', []))}"]}
        if not state.get("note"):
            update["note"] = "first"
        return update

    builder = StateGraph(Counted)
    builder.add_node("step", step)
    builder.add_edge(START, "step")
    builder.add_edge("step", END)
    return builder.compile(checkpointer=saver)


async def test_a_graphs_state_carries_over_turns_with_channels_written_only_once(
    saver: BoundedRedisSaver,
) -> None:
    graph, config = counting_graph(saver), thread()
    for _ in range(3):
        state = await graph.ainvoke({"items": []}, config)
    assert state == {"items": ["turn 0", "turn 1", "turn 2"], "note": "first"}
    stored = await saver.aget_tuple(config)
    assert stored is not None
    assert stored.checkpoint["channel_values"]["note"] == "first"
    assert stored.parent_config is not None


async def test_only_the_latest_checkpoint_is_kept(saver: BoundedRedisSaver) -> None:
    graph, config = counting_graph(saver), thread()
    await graph.ainvoke({"items": []}, config)
    first = await saver.aget_tuple(config)
    await graph.ainvoke({"items": []}, config)
    assert first is not None
    assert await saver.aget_tuple(first.config) is None
    listed = [found async for found in saver.alist(config)]
    assert len(listed) == 1
    assert listed[0].checkpoint["id"] != first.checkpoint["id"]


async def test_a_saver_keeping_three_reads_back_the_last_three_and_forgets_older_ones(
    redis: RedisClient,
) -> None:
    """Each kept checkpoint comes back with its own values (even those a later one replaced);
    what only forgotten checkpoints used is gone from the hash."""
    saver = BoundedRedisSaver(redis, PREFIX, TTL, keep=3)
    graph, config = counting_graph(saver), thread()
    for _ in range(5):
        await graph.ainvoke({"items": []}, config)
    listed = [found async for found in saver.alist(config)]
    assert len(listed) == 3
    ids = [found.checkpoint["id"] for found in listed]
    assert ids == sorted(ids, reverse=True)
    assert [found.parent_config for found in listed[:2]] == [
        {"configurable": {**found.config["configurable"]}} for found in listed[1:]
    ]
    states = [await graph.aget_state(found.config) for found in listed]
    assert states[0].values["items"] == [f"turn {i}" for i in range(5)]
    for state in states:
        assert state.values["note"] == "first"
    oldest = await saver.aget_tuple(listed[-1].config)
    assert oldest is not None
    assert oldest.checkpoint["id"] == ids[-1]
    fields = decoded_names(await redis.hgetall(saver.key(config["configurable"]["thread_id"])))
    kinds = [name.split(b"\x00")[0] for name in fields]
    assert kinds.count(b"h") == 2
    assert kinds.count(b"k") == 3
    versions = {found.checkpoint["channel_versions"]["items"] for found in listed}
    kept_items = [name for name in fields if name.startswith(b"o\x00\x00items\x00")]
    assert len(kept_items) <= len(versions)


async def test_a_thread_stored_latest_only_is_read_and_continued_by_a_saver_with_history(
    saver: BoundedRedisSaver, redis: RedisClient
) -> None:
    graph, config = counting_graph(saver), thread()
    for _ in range(2):
        await graph.ainvoke({"items": []}, config)
    upgraded = BoundedRedisSaver(redis, PREFIX, TTL, keep=10)
    graph = counting_graph(upgraded)
    assert (await graph.aget_state(config)).values["items"] == ["turn 0", "turn 1"]
    await graph.ainvoke({"items": []}, config)
    listed = [found async for found in upgraded.alist(config)]
    assert len(listed) > 1
    assert (await graph.aget_state(listed[0].config)).values["items"] == [
        "turn 0",
        "turn 1",
        "turn 2",
    ]


async def test_pending_writes_come_back_in_order_and_go_with_the_next_checkpoint(
    saver: BoundedRedisSaver,
) -> None:
    config = thread()
    saved = await saver.aput(config, empty_checkpoint(), {"step": -1}, {})
    await saver.aput_writes(saved, [("b", 2), ("a", 1)], task_id="task-2", task_path="~1")
    await saver.aput_writes(saved, [("c", 3)], task_id="task-1", task_path="~0")
    await saver.aput_writes(saved, [("c", 99)], task_id="task-1", task_path="~0")  # kept first
    stored = await saver.aget_tuple(saved)
    assert stored is not None
    assert stored.pending_writes == [("task-1", "c", 3), ("task-2", "b", 2), ("task-2", "a", 1)]
    after = await saver.aput(saved, empty_checkpoint(), {"step": 0}, {})
    newer = await saver.aget_tuple(after)
    assert newer is not None
    assert newer.pending_writes == []


async def test_namespaces_that_share_a_prefix_stay_apart(saver: BoundedRedisSaver) -> None:
    config = thread()
    thread_id = config["configurable"]["thread_id"]
    for namespace, value in (("a", "outer"), ("a:b", "inner")):
        checkpoint = empty_checkpoint()
        checkpoint["channel_values"] = {"x": value}
        checkpoint["channel_versions"] = {"x": 1}
        at: RunnableConfig = {"configurable": {"thread_id": thread_id, "checkpoint_ns": namespace}}
        await saver.aput(at, checkpoint, {}, {"x": 1})
    outer: RunnableConfig = {"configurable": {"thread_id": thread_id, "checkpoint_ns": "a"}}
    stored = await saver.aget_tuple(outer)
    assert stored is not None
    assert stored.checkpoint["channel_values"] == {"x": "outer"}
    checkpoint = empty_checkpoint()
    await saver.aput(outer, checkpoint, {}, {})  # "x" is no longer a channel of "a"
    inner = await saver.aget_tuple(
        {"configurable": {"thread_id": thread_id, "checkpoint_ns": "a:b"}}
    )
    assert inner is not None
    assert inner.checkpoint["channel_values"] == {"x": "inner"}


async def test_a_thread_is_deleted_whole_and_idles_out_on_its_ttl(
    saver: BoundedRedisSaver, redis: RedisClient
) -> None:
    graph, config = counting_graph(saver), thread()
    await graph.ainvoke({"items": []}, config)
    key = saver.key(config["configurable"]["thread_id"])
    assert 0 < await redis.ttl(key) <= TTL
    await redis.expire(key, 5)
    assert await saver.aget_tuple(config) is not None
    assert await redis.ttl(key) > 5  # a read renews the idle TTL
    await saver.adelete_thread(config["configurable"]["thread_id"])
    assert await redis.exists(key) == 0
    assert await saver.aget_tuple(config) is None


async def test_a_turn_that_lost_its_session_lock_writes_nothing(
    saver: BoundedRedisSaver, redis: RedisClient
) -> None:
    config = thread()
    thread_id = config["configurable"]["thread_id"]
    locks = RedisSessionLocks(redis, PREFIX, lease_seconds=30, fence_ttl=60)
    lease = await locks.acquire(thread_id, wait=0)
    assert lease is not None
    held = HeldLock(lease)
    fenced = with_facts(config, session_lock=held)
    saved = await saver.aput(fenced, empty_checkpoint(), {}, {})
    await redis.set(locks.lock_key(thread_id), "999:elsewhere:x")  # another turn took over
    with pytest.raises(SessionLeaseLost):
        await saver.aput(fenced, empty_checkpoint(), {}, {})
    at = with_facts(saved, session_lock=held)
    with pytest.raises(SessionLeaseLost):
        await saver.aput_writes(at, [("x", 1)], task_id="t")
    stored = await saver.aget_tuple(config)
    assert stored is not None
    assert stored.checkpoint["id"] == saved["configurable"]["checkpoint_id"]
    assert stored.pending_writes == []
    await held.let_go()


async def test_a_special_write_replaces_its_predecessor_even_beside_regular_ones(
    saver: BoundedRedisSaver,
) -> None:
    """LangGraph hands one list that mixes the graph's input with an interrupt or resume."""
    assert ERROR in WRITES_IDX_MAP
    saved = await saver.aput(thread(), empty_checkpoint(), {}, {})
    await saver.aput_writes(saved, [("x", "first"), (ERROR, "old")], task_id="t")
    await saver.aput_writes(saved, [("x", "second"), (ERROR, "new")], task_id="t")
    stored = await saver.aget_tuple(saved)
    assert stored is not None
    assert sorted(stored.pending_writes or []) == [("t", ERROR, "new"), ("t", "x", "first")]


async def test_a_newer_checkpoints_writes_survive_and_a_cleared_channel_leaves_no_value(
    saver: BoundedRedisSaver, redis: RedisClient
) -> None:
    config = thread()
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"x": "kept"}
    checkpoint["channel_versions"] = {"x": 1}
    saved = await saver.aput(config, checkpoint, {}, {"x": 1})
    newer: RunnableConfig = {"configurable": {**saved["configurable"], "checkpoint_id": "~later"}}
    await saver.aput_writes(newer, [("y", 1)], task_id="t")  # arrives before its checkpoint
    cleared = empty_checkpoint()
    cleared["channel_versions"] = {"x": 2}  # the channel's version moved, with no value
    await saver.aput(saved, cleared, {}, {"x": 2})
    fields = await redis.hgetall(saver.key(config["configurable"]["thread_id"]))
    kinds = sorted(name.split(b"\0")[0] for name in decoded_names(fields))
    assert kinds == [b"c", b"w"]


async def test_with_wait_replicas_a_write_no_replica_confirms_is_not_acknowledged(
    redis_flavours: RedisFlavours,
) -> None:
    """The Redis Stack of the tests has no replica: WAIT returns 0 after its timeout."""
    redis = redis_flavours.async_client("redis")
    saver = BoundedRedisSaver(redis, PREFIX, TTL, Replication(replicas=1, timeout_ms=100))
    with pytest.raises(Unavailable, match="0 of REDIS_WAIT_REPLICAS=1"):
        await saver.aput(thread(), empty_checkpoint(), {}, {})
    await redis.aclose()


async def test_with_wait_replicas_on_the_cluster_a_write_is_acknowledged_once_replicated(
    redis_flavours: RedisFlavours,
) -> None:
    """Each master has a replica; the script is loaded again where a master lost it."""
    redis = redis_flavours.async_client("cluster")
    await redis.script_flush()
    saver = BoundedRedisSaver(redis, PREFIX, TTL, Replication(replicas=1, timeout_ms=5000))
    graph, config = counting_graph(saver), thread()
    for _ in range(2):
        state = await graph.ainvoke({"items": []}, config)
    assert state["items"] == ["turn 0", "turn 1"]
    await redis.aclose()


async def test_on_the_cluster_wait_asks_the_replica_of_the_sessions_own_master(
    redis_flavours: RedisFlavours,
) -> None:
    """With the replica of one session's master paused, that session's write is refused and a
    session on another master is acknowledged: WAIT went to each key's own master."""
    cluster = redis_flavours.cluster
    finder = redis_flavours.client("cluster")
    assert isinstance(finder, redis_sync.RedisCluster)
    client = redis_flavours.async_client("cluster")
    saver = BoundedRedisSaver(client, PREFIX, TTL, Replication(replicas=1, timeout_ms=300))
    by_master: dict[int, RunnableConfig] = {}
    while len(by_master) < 2:
        config = thread()
        key = saver.key(config["configurable"]["thread_id"])
        by_master.setdefault(finder.get_node_from_key(key).port, config)  # type: ignore[no-untyped-call]
    (paused_port, paused), (_, other) = by_master.items()
    await saver.aput(paused, empty_checkpoint(), {}, {})  # maps the cluster, loads the script
    replica = cluster.replica_of(next(n for n in cluster.nodes if n.port == paused_port))
    assert replica.process.process is not None
    replica.process.process.send_signal(signal.SIGSTOP)
    try:
        with pytest.raises(Unavailable, match="0 of REDIS_WAIT_REPLICAS=1"):
            await saver.aput(paused, empty_checkpoint(), {}, {})
        await saver.aput(other, empty_checkpoint(), {}, {})
    finally:
        replica.process.process.send_signal(signal.SIGCONT)
        await client.aclose()
        finder.close()
