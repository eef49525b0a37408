"""A chat turn of a session reaches Redis in two round trips on every flavour (Stack, no
modules, Cluster): its admission (budget reservation, rate window, session lock, checkpoint
read) and its end (usage, settlement, checkpoint, lock release). Under a token or spend cap, a
turn whose history grows its worst case makes one more, reserving that share before the model
is called (`cover_prompt`). The app runs in process over graphgate's own client; what is
counted is each write of commands to a Redis socket, and the turn must still have done
everything those trips carry."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from graphs.store import redis_connection
from graphs.store.keys import RedisKeys
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
    # A lease long enough that the lock is not renewed within the turn.
    async with app_over(
        settings, redis_prefix=PREFIX, daily_budget_usd=budget, session_lock_lease=30
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
