"""A client that goes away cancels its upstream call at once, frees its slot, and leaves no
half-finished turn in its session."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from httpx_sse import aconnect_sse

from tests.live_servers import Graphgate, StartGraphgate
from tests.upstream import Upstream


@pytest.fixture
def one_slot_server(graphgate_factory: StartGraphgate, mode: str) -> Graphgate:
    """One upstream call at a time: a leaked slot would make the next request time out."""
    return graphgate_factory(mode, MAX_CONCURRENCY="1", REQUEST_TIMEOUT="5")


def turn(question: str, session: str) -> dict[str, object]:
    return {"input": {"question": question}, "config": {"configurable": {"session_id": session}}}


async def assert_slot_free_and_turn_not_stored(server: Graphgate, user: str) -> None:
    headers = {"X-User-Id": user}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as client:
        after = await client.post("/chat/invoke", json=turn("next one", "other"))
        assert after.status_code == 200
        assert (await client.get("/chat/sessions/dropped")).status_code == 404


async def test_dropping_a_stream_cancels_the_upstream_call_within_500_ms(
    one_slot_server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    upstream.behave(marker, tokens=60, tokens_per_second=20)
    async with (
        httpx.AsyncClient(timeout=30) as client,
        aconnect_sse(
            client,
            "POST",
            f"{one_slot_server.url}/chat/stream",
            json=turn(f"long answer {marker}", "dropped"),
            headers={"X-User-Id": user},
        ) as source,
    ):
        async for event in source.aiter_sse():
            if event.event == "data" and event.json()["content"].startswith("w"):
                break
    dropped_at = time.monotonic()
    stats = await upstream.wait_for(marker, "cancelled", within=2)
    assert stats is not None, "the upstream never saw the connection close"
    assert time.monotonic() - dropped_at < 0.5
    assert stats["completed"] == 0
    await assert_slot_free_and_turn_not_stored(one_slot_server, user)


async def test_dropping_an_invoke_cancels_the_upstream_call_within_500_ms(
    one_slot_server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    upstream.behave(marker, latency_ms=3000)
    async with httpx.AsyncClient(timeout=30) as client:
        request = asyncio.create_task(
            client.post(
                f"{one_slot_server.url}/chat/invoke",
                json=turn(f"slow answer {marker}", "dropped"),
                headers={"X-User-Id": user},
            )
        )
        assert await upstream.wait_for(marker, "requests", within=5) is not None
        request.cancel()
        dropped_at = time.monotonic()
        with pytest.raises(asyncio.CancelledError):
            await request
    stats = await upstream.wait_for(marker, "cancelled", within=2)
    assert stats is not None, "the upstream never saw the connection close"
    assert time.monotonic() - dropped_at < 0.5
    await assert_slot_free_and_turn_not_stored(one_slot_server, user)
