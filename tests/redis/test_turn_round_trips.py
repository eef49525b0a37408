"""A chat turn of a session reaches Redis in two round trips on every flavour (Stack, no
modules, Cluster): its admission (budget reservation, rate window, session lock, checkpoint
read) and its end (usage, settlement, checkpoint, lock release). Under a token or spend cap, a
turn whose history grows its worst case makes one more, reserving that share before the model
is called (`cover_prompt`). The app runs in process over graphgate's own client; what is
counted is each write of commands to a Redis socket, and the turn must still have done
everything those trips carry."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from redis.exceptions import ResponseError

from graphs.clock import SYSTEM_CLOCK
from graphs.limits.budget import RedisBudget, Reservation
from graphs.limits.usage import RedisUsageLedger
from graphs.limits.usage_counters import LedgerEntry
from graphs.store import redis_connection
from graphs.store.keys import RedisKeys
from graphs.store.redis_client import RedisClient
from tests.conftest import REDIS_FLAVOURS
from tests.redis.app_in_process import app_over
from tests.redis_servers import RedisFlavours

PREFIX = "test-trips:"


class CountingConnection(redis_connection.TcpConnection):
    """graphgate's connection, counting each write of one or more commands to Redis."""

    writes = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.writes += 1
        await super().send_packed_command(command, check_health)


def nodes_apart(cluster: Any, principal: str) -> int:
    """On a Cluster, a trip is one write per master it reaches: 1 more for each of the two
    trips when the principal's keys and the session's sit on different masters."""
    keys = RedisKeys(PREFIX)
    principal_key, session_key = keys.rate_limit(principal), keys.session_lock(f"{principal}:s")
    apart = cluster.get_node_from_key(principal_key) != cluster.get_node_from_key(session_key)
    return 2 if apart else 0


@pytest.mark.parametrize(("budget", "round_trips"), [(0, 2), (5, 3)])
@pytest.mark.parametrize("flavour", REDIS_FLAVOURS)
async def test_a_session_turn_is_two_round_trips_admission_and_end(
    redis_flavours: RedisFlavours,
    flavour: str,
    budget: float,
    round_trips: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(redis_connection.BY_SCHEME, "redis", CountingConnection)
    principal = f"trips-{uuid.uuid4().hex[:8]}"
    headers = {"X-User-Id": principal}

    def turn(question: str) -> dict[str, Any]:
        return {"input": {"question": question}, "config": {"configurable": {"session_id": "s"}}}

    settings = redis_flavours.settings(flavour)
    # A lease long enough that the lock is not renewed within the turn; the console's usage
    # sums, written every few seconds in the end trip of a turn that finds them due, not due.
    async with app_over(
        settings,
        redis_prefix=PREFIX,
        daily_budget_usd=budget,
        session_lock_lease=30,
        usage_overview_flush_seconds=3600,
    ) as client:
        first = await client.post("/chat/invoke", json=turn("first"), headers=headers)
        assert first.status_code == 200, first.text
        before = CountingConnection.writes
        second = await client.post("/chat/invoke", json=turn("second"), headers=headers)
        trips = CountingConnection.writes - before
        assert second.status_code == 200, second.text
        usage = (await client.get("/usage", headers=headers)).json()
        session = (await client.get("/chat/sessions/s", headers=headers)).json()

    store = redis_flavours.client(flavour)
    keys = RedisKeys(PREFIX)
    assert trips == round_trips + (nodes_apart(store, principal) if flavour == "cluster" else 0)
    asked = [m["content"] for m in session["messages"] if m["type"] == "human"]
    assert asked == ["first", "second"]
    assert sum(day["total"]["requests"] for day in usage["days"]) == 2
    assert store.zcard(keys.reserved(principal)) == 0  # settled, none left held
    assert not store.exists(keys.session_lock(f"{principal}:s"))
    assert store.zcard(keys.rate_limit(principal)) == 2


async def test_a_usage_write_refused_beside_a_stored_turn_is_logged_and_the_turn_answered(
    redis_flavours: RedisFlavours, capsys: pytest.CaptureFixture[str]
) -> None:
    """The end trip's replies are read: a usage write that Redis refused is logged, not lost
    silently in the pipeline; the turn it sat beside was stored, so the client gets its reply
    (a 503 would have it sent, and paid for, again). Here the principal's usage hash is,
    wrongly, a string."""
    principal = f"refused-{uuid.uuid4().hex[:8]}"
    headers = {"X-User-Id": principal}
    turn = {"input": {"question": "hi"}, "config": {"configurable": {"session_id": "s"}}}
    store = redis_flavours.client("redis")
    store.set(RedisKeys(PREFIX).usage_day(principal, SYSTEM_CLOCK.today()), "x")
    async with app_over(redis_flavours.settings("redis"), redis_prefix=PREFIX) as client:
        answered = await client.post("/chat/invoke", json=turn, headers=headers)
        session = (await client.get("/chat/sessions/s", headers=headers)).json()
    assert answered.status_code == 200, answered.text
    assert [m["content"] for m in session["messages"] if m["type"] == "human"] == ["hi"]
    assert not store.exists(RedisKeys(PREFIX).session_lock(f"{principal}:s"))
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines() if "{" in line]
    assert {
        "level": "error",
        "message": "a write beside a turn's own failed: ResponseError",
    }.items() <= next(
        line for line in logged if line.get("logger") == "graphs.store.round_trip"
    ).items()


async def test_a_store_write_sent_alone_raises_what_redis_refused(redis: RedisClient) -> None:
    """A store's own one-command trip (a settlement, a release, the ledger's record) reads
    its reply: Redis's refusal raises instead of vanishing in the pipeline."""
    principal = f"alone-{uuid.uuid4().hex[:8]}"
    keys = RedisKeys(PREFIX)
    ledger = RedisUsageLedger(redis, PREFIX, retention_days=90)
    budget = RedisBudget(redis, ledger, PREFIX)
    await redis.set(keys.usage_day(principal, SYSTEM_CLOCK.today()), "not a hash")
    await redis.set(keys.reserved(principal), "not a sorted set")
    held = Reservation(principal, tokens=10, nano_usd=0)
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await ledger.record(principal, "demo:demo", LedgerEntry(total_tokens=10), route="chat")
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await budget.release(principal, [held])
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await budget.settle(held, 10)


@pytest.mark.parametrize("flavour", REDIS_FLAVOURS)
async def test_an_admission_whose_rate_reply_is_an_error_gives_its_reservation_back(
    redis_flavours: RedisFlavours, flavour: str
) -> None:
    """The budget reservation applied in the same trip as a rate window that Redis refused
    (here its key is, wrongly, a string): the turn gets 503 and holds nothing afterwards."""
    principal = f"cut-{uuid.uuid4().hex[:8]}"
    keys = RedisKeys(PREFIX)
    store = redis_flavours.client(flavour)
    store.set(keys.rate_limit(principal), "not a sorted set")
    turn = {"input": {"question": "hi"}, "config": {"configurable": {"session_id": "s"}}}
    async with app_over(
        redis_flavours.settings(flavour), redis_prefix=PREFIX, daily_budget_usd=5
    ) as client:
        refused = await client.post("/chat/invoke", json=turn, headers={"X-User-Id": principal})
    assert refused.status_code == 503, refused.text
    assert store.zcard(keys.reserved(principal)) == 0
    assert not store.exists(keys.session_lock(f"{principal}:s"))
