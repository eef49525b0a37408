"""One turn at a time per session (`SESSION_CONFLICT`): concurrent turns of one session under
gunicorn wait for each other (enqueue) or are refused (reject), and none of them is lost.
End to end on one Redis; the lock's store runs on every flavour in
`tests/redis/test_session_lock_store.py`."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

import httpx
import pytest
import redis
from httpx_sse import aconnect_sse

from tests.conftest import mode_fixture
from tests.live_servers import Graphgate, StartGraphgate
from tests.upstream import Upstream

mode = mode_fixture(["redis"])  # the flavours: tests/redis/test_session_lock_store.py


LEASE = 2.0


def lock_key(user: str, session: str) -> str:
    return f"graphgate:session_lock:{{{user}:{session}}}"


async def turn(
    client: httpx.AsyncClient, session: str, question: str, path: str = "/chat/invoke"
) -> httpx.Response:
    body = {"input": {"question": question}, "config": {"configurable": {"session_id": session}}}
    return await client.post(path, json=body)


def history(server: Graphgate, user: str, session: str) -> list[str]:
    response = httpx.get(f"{server.url}/chat/sessions/{session}", headers={"X-User-Id": user})
    response.raise_for_status()
    return [message["content"] for message in response.json()["messages"]]


def session_status(server: Graphgate, user: str, session: str) -> int:
    url = f"{server.url}/chat/sessions/{session}"
    return httpx.get(url, headers={"X-User-Id": user}).status_code


def questions(messages: list[str], marker: str) -> list[str]:
    return [text for text in messages if text.startswith("turn ") and marker in text]


async def ten_turns(server: Graphgate, user: str, session: str, marker: str) -> list[Any]:
    async with httpx.AsyncClient(
        base_url=server.url, headers={"X-User-Id": user}, timeout=60
    ) as client:
        return await asyncio.gather(
            *(turn(client, session, f"turn {i} {marker}") for i in range(10))
        )


@pytest.mark.parametrize("mode", ["embedded", "redis"])
async def test_ten_simultaneous_turns_of_one_session_all_land_in_its_history(
    graphgate_factory: StartGraphgate, upstream: Upstream, user: str, marker: str, mode: str
) -> None:
    workers = 0 if mode == "embedded" else 2
    server = graphgate_factory(mode, workers=workers, QUEUE_TIMEOUT="30")
    upstream.behave(marker, latency_ms=100)
    responses = await ten_turns(server, user, "s1", marker)
    assert [r.status_code for r in responses] == [200] * 10
    kept = questions(history(server, user, "s1"), marker)
    assert sorted(kept) == sorted(f"turn {i} {marker}" for i in range(10))
    # Each turn ran on the history the one before it wrote: the upstream saw 0, 1, ... 9
    # earlier turns, one request each (never two turns on the same history).
    earlier = sorted(len(questions_in(p, marker)) - 1 for p in upstream.prompts(marker))
    assert earlier == list(range(10))


def questions_in(prompt: list[dict[str, Any]], marker: str) -> list[str]:
    return [m["content"] for m in prompt if m["role"] == "user" and marker in m["content"]]


async def test_with_reject_the_extra_turns_get_409_and_the_history_holds_the_accepted(
    graphgate_factory: StartGraphgate, upstream: Upstream, user: str, marker: str, mode: str
) -> None:
    server = graphgate_factory(mode, workers=2, SESSION_CONFLICT="reject")
    upstream.behave(marker, latency_ms=1000)
    responses = await ten_turns(server, user, "s1", marker)
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) == {200, 409}
    for refused in (r for r in responses if r.status_code == 409):
        assert refused.json()["error"]["code"] == "session_busy"
        assert refused.headers["Retry-After"] == "1"
        assert refused.json()["error"]["trace_id"] == refused.headers["X-Trace-Id"]
    accepted = [f"turn {i} {marker}" for i, r in enumerate(responses) if r.status_code == 200]
    assert sorted(questions(history(server, user, "s1"), marker)) == sorted(accepted)
    assert upstream.stats(marker)["requests"] == len(accepted)


async def test_enqueued_turns_that_wait_past_queue_timeout_get_503_session_busy(
    graphgate_factory: StartGraphgate, upstream: Upstream, user: str, marker: str, mode: str
) -> None:
    server = graphgate_factory(mode, QUEUE_TIMEOUT="0.5")
    upstream.behave(marker, latency_ms=2000)
    async with httpx.AsyncClient(
        base_url=server.url, headers={"X-User-Id": user}, timeout=60
    ) as client:
        first = asyncio.create_task(turn(client, "s1", f"turn 0 {marker}"))
        assert await upstream.wait_for(marker, "requests", 1)
        started = time.monotonic()
        second = await turn(client, "s1", f"turn 1 {marker}", path="/chat/stream")
        waited = time.monotonic() - started
        assert (await first).status_code == 200
    assert second.status_code == 503
    assert second.json()["error"]["code"] == "session_busy"
    assert second.headers["Retry-After"] == "1"
    assert 0.5 <= waited < 1.5
    assert questions(history(server, user, "s1"), marker) == [f"turn 0 {marker}"]


async def stream_turn(client: httpx.AsyncClient, session: str, question: str) -> list[str]:
    """The names of the events of a streamed turn."""
    body = {"input": {"question": question}, "config": {"configurable": {"session_id": session}}}
    async with aconnect_sse(client, "POST", "/chat/stream", json=body) as source:
        assert source.response.status_code == 200
        return [event.event async for event in source.aiter_sse()]


async def test_streams_batches_and_v1_turns_of_one_session_queue_behind_each_other(
    graphgate_factory: StartGraphgate, upstream: Upstream, user: str, marker: str, mode: str
) -> None:
    server = graphgate_factory(mode, workers=2, QUEUE_TIMEOUT="30")
    upstream.behave(marker, latency_ms=100)
    config = {"configurable": {"session_id": "s1"}}
    headers = {"X-User-Id": user, "X-Session-Id": "s1"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60) as client:
        results: list[Any] = await asyncio.gather(
            *(stream_turn(client, "s1", f"turn s{i} {marker}") for i in range(3)),
            *(
                client.post(
                    "/chat/batch",
                    json={"inputs": [{"question": f"turn b{i} {marker}"}], "config": config},
                )
                for i in range(3)
            ),
            *(
                client.post(
                    "/v1/chat/completions",
                    json={
                        "model": "graphgate",
                        "messages": [{"role": "user", "content": f"turn v{i} {marker}"}],
                    },
                )
                for i in range(3)
            ),
        )
    streams, responses = results[:3], results[3:]
    assert [events[-1] for events in streams] == ["end"] * 3
    assert [r.status_code for r in responses] == [200] * 6
    expected = [f"turn {kind}{i} {marker}" for kind in "sbv" for i in range(3)]
    assert sorted(questions(history(server, user, "s1"), marker)) == sorted(expected)


async def test_a_worker_killed_holding_a_session_lock_delays_the_next_turn_by_at_most_the_lease(
    graphgate_factory: StartGraphgate,
    upstream: Upstream,
    redis_store: redis.Redis | redis.RedisCluster,
    user: str,
    marker: str,
    mode: str,
) -> None:
    server = graphgate_factory(
        mode, fresh=True, workers=2, SESSION_LOCK_LEASE=str(LEASE), QUEUE_TIMEOUT="30"
    )
    upstream.behave(f"hang {marker}", hang=True)
    store = redis_store
    async with httpx.AsyncClient(
        base_url=server.url, headers={"X-User-Id": user}, timeout=60
    ) as client:
        doomed = asyncio.create_task(turn(client, "s1", f"hang {marker}"))
        assert await upstream.wait_for(f"hang {marker}", "requests", 1)
        token, _host, pid, _nonce = str(store.get(lock_key(user, "s1"))).split(":")
        os.kill(int(pid), signal.SIGKILL)
        killed_at = time.monotonic()
        response = await turn(client, "s1", f"turn after {marker}")
        delay = time.monotonic() - killed_at
        (lost,) = await asyncio.gather(doomed, return_exceptions=True)
    assert isinstance(lost, httpx.HTTPError)  # its worker died: never acknowledged
    assert response.status_code == 200
    assert delay <= LEASE + 0.5
    assert questions(history(server, user, "s1"), marker) == [f"turn after {marker}"]
    # The turn that took over had the next fencing token.
    assert store.get(f"graphgate:session_fence:{{{user}:s1}}") == str(int(token) + 1)


async def test_a_turn_whose_lock_was_taken_over_is_not_stored(
    graphgate_factory: StartGraphgate,
    upstream: Upstream,
    redis_store: redis.Redis | redis.RedisCluster,
    user: str,
    marker: str,
    mode: str,
) -> None:
    """A holder paused past its lease must not overwrite the session: the checkpointer
    checks the lock's token in the script that writes."""
    server = graphgate_factory(mode)
    upstream.behave(marker, latency_ms=1000)
    store = redis_store
    async with httpx.AsyncClient(
        base_url=server.url, headers={"X-User-Id": user}, timeout=60
    ) as client:
        running = asyncio.create_task(turn(client, "s1", f"turn 0 {marker}"))
        assert await upstream.wait_for(marker, "requests", 1)
        store.set(lock_key(user, "s1"), "999:elsewhere:1:x", px=60_000)  # another holder
        response = await running
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "session_busy"
    store.delete(lock_key(user, "s1"))
    assert session_status(server, user, "s1") == 404


async def test_deleting_a_session_while_its_turn_runs_waits_for_the_turn(
    graphgate_factory: StartGraphgate, upstream: Upstream, user: str, marker: str, mode: str
) -> None:
    """Else the running turn would write the deleted session back."""
    server = graphgate_factory(mode)
    upstream.behave(marker, latency_ms=1000)
    async with httpx.AsyncClient(
        base_url=server.url, headers={"X-User-Id": user}, timeout=60
    ) as client:
        assert (await turn(client, "s1", f"turn 0 {marker}")).status_code == 200
        running = asyncio.create_task(turn(client, "s1", f"turn 1 {marker}"))
        assert await upstream.wait_for(marker, "requests", 2)
        deleted = await client.delete("/chat/sessions/s1")
        assert (await running).status_code == 200
    assert deleted.status_code == 204
    assert session_status(server, user, "s1") == 404


async def test_a_batch_turn_waiting_its_slot_keeps_its_session_locked_past_the_lease(
    graphgate_factory: StartGraphgate, upstream: Upstream, user: str, marker: str, mode: str
) -> None:
    """The lock is renewed from admission on: a batch's second turn waits behind the first
    (BATCH_MAX_CONCURRENCY=1) longer than the lease, and nobody takes its session meanwhile."""
    lease = 1.0
    server = graphgate_factory(
        mode,
        SESSION_CONFLICT="reject",
        SESSION_LOCK_LEASE=str(lease),
        BATCH_MAX_CONCURRENCY="1",
    )
    upstream.behave(marker, latency_ms=2000)
    batch = {
        "inputs": [{"question": f"turn 0 {marker}"}, {"question": f"turn 1 {marker}"}],
        "config": [{"configurable": {"session_id": "s1"}}, {"configurable": {"session_id": "s2"}}],
    }
    async with httpx.AsyncClient(
        base_url=server.url, headers={"X-User-Id": user}, timeout=60
    ) as client:
        running = asyncio.create_task(client.post("/chat/batch", json=batch))
        assert await upstream.wait_for(marker, "requests", 1)
        await asyncio.sleep(lease * 1.5)  # past the lease of a lock nobody renewed
        intruder = await turn(client, "s2", f"intruder {marker}")
        assert (await running).status_code == 200
    assert intruder.status_code == 409
    assert questions(history(server, user, "s2"), marker) == [f"turn 1 {marker}"]
