"""A `/chat/batch` is stored all or nothing: when one turn fails upstream, the client gets the
error for the whole batch and every session of it is left as it was, including those whose
turns had finished; the retry stores each turn once. What the finished turns used was paid
for, and stays in the usage ledger."""

from __future__ import annotations

from typing import Any

import httpx

from tests.live_servers import Graphgate
from tests.upstream import Upstream

SESSIONS = ("a", "b", "c")


async def sessions(client: httpx.AsyncClient) -> dict[str, Any]:
    """Each session's stored history, or None when it has none."""
    found = {}
    for session in SESSIONS:
        response = await client.get(f"/chat/sessions/{session}")
        found[session] = response.json()["messages"] if response.status_code == 200 else None
    return found


async def total_tokens(client: httpx.AsyncClient) -> int:
    days = (await client.get("/usage", params={"days": 1})).json()["days"]
    return int(sum(day["total"].get("total_tokens", 0) for day in days))


def batch(marker: str) -> dict[str, Any]:
    """Sessions a and b answer at once; c's turn fails upstream, after them."""
    questions = [f"a ok {marker}", f"b ok {marker}", f"fail {marker}"]
    return {
        "inputs": [{"question": question} for question in questions],
        "config": [{"configurable": {"session_id": session}} for session in SESSIONS],
    }


async def test_a_failed_batch_stores_no_turn_and_its_retry_stores_each_once(
    server: Graphgate, upstream: Upstream, user: str, marker: str
) -> None:
    upstream.behave(f"fail {marker}", statuses=[500] * 20, latency_ms=300)
    async with httpx.AsyncClient(
        base_url=server.url, headers={"X-User-Id": user}, timeout=60
    ) as client:
        for session in ("a", "b"):
            seeded = await client.post(
                "/chat/invoke",
                json={
                    "input": {"question": f"seed {session} {marker}"},
                    "config": {"configurable": {"session_id": session}},
                },
            )
            assert seeded.status_code == 200
        before = await sessions(client)
        tokens_before = await total_tokens(client)

        failed = await client.post("/chat/batch", json=batch(marker))

        assert failed.status_code == 502
        assert failed.json()["error"]["code"] == "upstream_error"
        finished = await upstream.astats(f"ok {marker}")
        assert finished["completed"] == 2  # a and b had their answers before c failed
        assert await sessions(client) == before
        paid = sum(usage["total_tokens"] for usage in finished["usage"])
        assert await total_tokens(client) == tokens_before + paid

        upstream.behave(f"fail {marker}")  # the upstream has recovered
        retried = await client.post("/chat/batch", json=batch(marker))
        assert retried.status_code == 200
        after = await sessions(client)

    def contents(session: str) -> list[str]:
        return [message["content"] for message in after[session]]

    for session in ("a", "b"):
        seed, turn = f"seed {session} {marker}", f"{session} ok {marker}"
        assert contents(session) == [seed, f"Echo: {seed}", turn, f"Echo: {turn}"]
    assert contents("c") == [f"fail {marker}", f"Echo: fail {marker}"]
