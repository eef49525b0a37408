"""Drill: the worker running a background run is killed with `kill -9` mid-run, after the
agent's tool has run; the other worker takes the run over from its last checkpoint (the first
model call is not made again), `join` returns its answer, and the hand-over time (from the
kill to the run's start on the other worker) is reported."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from typing import Any

import httpx
from httpx_sse import aconnect_sse

from tests.example_agent import ANSWER, agent_behaves, ask
from tests.live_servers import StartGraphgate
from tests.reliability.drill import report
from tests.upstream import Upstream

AGENT = '[routes.agent]\ngraph = "examples.agent:make_graph"\n'
RUN_LEASE, SESSION_LOCK_LEASE = 1.0, 2.0


def worker_of(line: str) -> int:
    pid: int = json.loads(line)["process"]
    return pid


async def until_the_tool_ran(http: httpx.AsyncClient, run_path: str) -> None:
    """Follow the run's kept events until its values hold the tool's result."""
    async with aconnect_sse(http, "GET", f"{run_path}/stream") as source:
        async for event in source.aiter_sse():
            if event.event != "values":
                continue
            if any(m["type"] == "tool" for m in json.loads(event.data)["messages"]):
                return
    raise AssertionError("the run ended before its tool ran")


async def test_a_background_run_whose_worker_is_killed_is_finished_by_another(
    graphgate_factory: StartGraphgate,
    upstream: Upstream,
    tmp_path: Any,
    user: str,
    marker: str,
) -> None:
    routes = tmp_path / "routes.toml"
    routes.write_text(AGENT)
    agent_behaves(upstream, marker, tokens_per_second=4)
    server = graphgate_factory(
        "redis",
        workers=2,
        ROUTES_FILE=str(routes),
        RUN_LEASE=str(RUN_LEASE),
        SESSION_LOCK_LEASE=str(SESSION_LOCK_LEASE),
    )
    thread = str(uuid.uuid4())
    body = {
        "assistant_id": "agent",
        "input": ask(marker),
        "if_not_exists": "create",
        "stream_resumable": True,
    }
    async with httpx.AsyncClient(base_url=server.url, headers={"X-User-Id": user}) as http:
        created = (await http.post(f"/threads/{thread}/runs", json=body)).json()
        run_path = f"/threads/{thread}/runs/{created['run_id']}"
        line = await asyncio.to_thread(
            server.process.wait_for_line, lambda line: f'"/threads/{thread}/runs"' in line
        )
        await until_the_tool_ran(http, run_path)
        os.kill(worker_of(line), signal.SIGKILL)
        killed_at = time.monotonic()
        took_over = await asyncio.to_thread(
            server.process.wait_for_line,
            lambda line: f"taking over background run {created['run_id']}" in line,
            RUN_LEASE * 2 + SESSION_LOCK_LEASE * 2 + 10,
        )
        handed_over_in = time.monotonic() - killed_at
        joined = (await http.get(f"{run_path}/join", timeout=30)).json()
        finished = (await http.get(run_path)).json()
        thread_now = (await http.get(f"/threads/{thread}")).json()
    calls = upstream.stats(marker)
    report(
        "background_takeover",
        {
            "run_lease_seconds": RUN_LEASE,
            "session_lock_lease_seconds": SESSION_LOCK_LEASE,
            "handed_over_in_seconds": round(handed_over_in, 2),
            "model_calls_completed": calls["completed"],
            "model_calls_started": calls["requests"],
        },
    )
    assert "from its last checkpoint" in took_over
    assert [m["type"] for m in joined["messages"]] == ["human", "ai", "tool", "ai"]
    assert joined["messages"][-1]["content"] == ANSWER
    assert finished["status"] == "success"
    assert thread_now["status"] == "idle"
    assert calls["completed"] == 2  # the first call once, the cut second call again
    # The bound: the dead worker's session lock lapses, then the next look for lapsed leases.
    assert handed_over_in < SESSION_LOCK_LEASE + RUN_LEASE * 2 + 2
