"""A request refused before it runs (a busy session, a batch whose configs do not match its
inputs) does not use up the principal's rate window or budget."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from tests.live_servers import StartGraphgate
from tests.upstream import Upstream

RATE = 3
# Two session turns' worst case (MAX_INPUT_TOKENS 2000 + MAX_OUTPUT_TOKENS 4096), not three: a
# refused request that kept its reservation would leave no room for the next one.
TWO_TURNS = str(int(2.5 * (2000 + 4096)))


def turn(api: str, question: str, session: str) -> tuple[str, dict[str, Any], dict[str, str]]:
    body: dict[str, Any]
    if api == "v1":
        body = {"model": "graphgate", "messages": [{"role": "user", "content": question}]}
        return "/v1/chat/completions", body, {"X-Session-Id": session}
    body = {"input": {"question": question}, "config": {"configurable": {"session_id": session}}}
    return "/chat/invoke", body, {}


@pytest.mark.parametrize("api", ["chat", "v1"])
async def test_session_busy_refusals_do_not_use_the_rate_window(
    graphgate_factory: StartGraphgate,
    mode: str,
    api: str,
    upstream: Upstream,
    user: str,
    marker: str,
) -> None:
    server = graphgate_factory(
        mode, SESSION_CONFLICT="reject", RATE_LIMIT_MAX=str(RATE), TOKENS_PER_MINUTE=TWO_TURNS
    )
    upstream.behave(f"slow {marker}", latency_ms=1500)
    busy = uuid.uuid4().hex
    async with httpx.AsyncClient(
        base_url=server.url, headers={"X-User-Id": user}, timeout=30
    ) as client:
        path, body, headers = turn(api, f"slow {marker}", busy)
        running = asyncio.create_task(client.post(path, json=body, headers=headers))
        assert await upstream.wait_for(f"slow {marker}", "requests") is not None
        refused = []
        for index in range(4):
            path, body, headers = turn(api, f"again {index} {marker}", busy)
            refused.append(await client.post(path, json=body, headers=headers))
        path, body, headers = turn(api, f"elsewhere {marker}", uuid.uuid4().hex)
        elsewhere = await client.post(path, json=body, headers=headers)
        assert (await running).status_code == 200
    assert [r.status_code for r in refused] == [409] * 4
    assert elsewhere.status_code == 200, elsewhere.text
    assert elsewhere.headers["X-RateLimit-Remaining"] == str(RATE - 2)


def test_a_batch_whose_configs_do_not_match_its_inputs_uses_no_quota(
    graphgate_factory: StartGraphgate, mode: str, user: str, marker: str
) -> None:
    server = graphgate_factory(mode, RATE_LIMIT_MAX=str(RATE), TOKENS_PER_MINUTE="100000")
    mismatched = {
        "inputs": [{"question": f"a {marker}"}, {"question": f"b {marker}"}],
        "config": [{}, {}, {}],
    }
    with httpx.Client(base_url=server.url, headers={"X-User-Id": user}, timeout=30) as client:
        refused = [client.post("/chat/batch", json=mismatched) for _ in range(2)]
        after = client.post("/chat/invoke", json={"input": {"question": f"c {marker}"}})
    for response in refused:
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "validation_error"
    assert after.status_code == 200, after.text
    assert after.headers["X-RateLimit-Remaining"] == str(RATE - 1)
