"""Batch bounds: size (413 over MAX_BATCH_SIZE) and concurrency (BATCH_MAX_CONCURRENCY)."""

from __future__ import annotations

import httpx

from tests.live_servers import StartGraphgate
from tests.upstream import Upstream


def test_a_batch_over_max_batch_size_is_413_with_the_error_body(
    graphgate_factory: StartGraphgate, user: str
) -> None:
    inputs = [{"question": f"q{i}"} for i in range(21)]
    response = httpx.post(
        f"{graphgate_factory().url}/chat/batch",
        json={"inputs": inputs},
        headers={"X-User-Id": user},
    )
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "payload_too_large"
    assert "MAX_BATCH_SIZE=20" in error["message"]
    assert error["trace_id"] == response.headers["X-Trace-Id"]


def test_a_batch_runs_at_most_batch_max_concurrency_turns_at_once(
    graphgate_factory: StartGraphgate, upstream: Upstream, user: str, marker: str
) -> None:
    upstream.behave(marker, latency_ms=300)
    inputs = [{"question": f"q{i} {marker}"} for i in range(10)]
    response = httpx.post(
        f"{graphgate_factory().url}/chat/batch",
        json={"inputs": inputs, "config": {"max_concurrency": 10}},
        headers={"X-User-Id": user},
        timeout=30,
    )
    assert response.status_code == 200
    answers = [output["content"] for output in response.json()["output"]]
    assert answers == [f"Echo: q{i} {marker}" for i in range(10)]
    assert upstream.stats(marker)["peak_in_flight"] == 5


async def test_when_a_batch_turn_fails_the_others_are_cancelled_and_not_stored(
    graphgate_factory: StartGraphgate, upstream: Upstream, user: str, marker: str
) -> None:
    """The client gets the failure for the whole batch, so no turn of it may be stored."""
    upstream.behave(f"refused {marker}", statuses=[400])
    upstream.behave(f"slow {marker}", latency_ms=3000)
    server = graphgate_factory("redis")
    batch = {
        "inputs": [{"question": f"slow {marker}"}, {"question": f"refused {marker}"}],
        "config": [{"configurable": {"session_id": "s1"}}, {"configurable": {"session_id": "s2"}}],
    }
    async with httpx.AsyncClient(
        base_url=server.url, headers={"X-User-Id": user}, timeout=30
    ) as client:
        response = await client.post("/chat/batch", json=batch)
        stored = await client.get("/chat/sessions/s1")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_input"
    assert await upstream.wait_for(f"slow {marker}", "cancelled", 1) is not None
    assert stored.status_code == 404
