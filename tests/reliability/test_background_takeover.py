"""Drill: the worker running a background run is killed with `kill -9` mid-run, after the
agent's tool has run; the other worker takes the run over from its last checkpoint (the first
model call is not made again), `join` returns its answer, and the hand-over time (from the
kill to the run's start on the other worker) is reported. A worker told to stop (SIGTERM)
hands its run back at once instead: it is taken over well within the lease."""

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

from tests.example_agent import ANSWER, agent_behaves, agent_routes, ask
from tests.live_servers import Graphgate, StartGraphgate
from tests.reliability.drill import report
from tests.upstream import Upstream

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


async def start_background_run(
    http: httpx.AsyncClient, server: Graphgate, marker: str
) -> tuple[str, int]:
    """A resumable background run of the agent on a new thread, followed until its tool ran:
    its path, and the pid of the worker that runs it."""
    thread = str(uuid.uuid4())
    body = {
        "assistant_id": "agent",
        "input": ask(marker),
        "if_not_exists": "create",
        "stream_resumable": True,
    }
    created = (await http.post(f"/threads/{thread}/runs", json=body)).json()
    line = await asyncio.to_thread(
        server.process.wait_for_line, lambda line: f'"/threads/{thread}/runs"' in line
    )
    run_path = f"/threads/{thread}/runs/{created['run_id']}"
    await until_the_tool_ran(http, run_path)
    return run_path, worker_of(line)


def drill_server(
    graphgate_factory: StartGraphgate, tmp_path: Any, lease: float, lock_lease: float
) -> Graphgate:
    """Two workers serving the agent, with the leases given, and keys of their own: the other
    tests' servers share the Redis, and any worker of a service may take over its runs."""
    routes = agent_routes(tmp_path)
    return graphgate_factory(
        "redis",
        workers=2,
        ROUTES_FILE=routes,
        REDIS_PREFIX=f"drill-{uuid.uuid4().hex[:8]}:",
        RUN_LEASE=str(lease),
        SESSION_LOCK_LEASE=str(lock_lease),
    )


async def signal_and_wait_for_the_take_over(
    server: Graphgate, http: httpx.AsyncClient, marker: str, signum: int, within: float
) -> tuple[str, str, float]:
    """Start a background run, signal its worker once the tool ran: the run's path, the line
    of the take-over and the seconds from the signal to it."""
    run_path, worker = await start_background_run(http, server, marker)
    os.kill(worker, signum)
    signalled_at = time.monotonic()
    run_id = run_path.rsplit("/", 1)[-1]
    took_over = await asyncio.to_thread(
        server.process.wait_for_line,
        lambda line: f"taking over background run {run_id}" in line,
        within,
    )
    return run_path, took_over, time.monotonic() - signalled_at


async def test_a_background_run_whose_worker_is_killed_is_finished_by_another(
    graphgate_factory: StartGraphgate, upstream: Upstream, tmp_path: Any, user: str, marker: str
) -> None:
    agent_behaves(upstream, marker, tokens_per_second=4)
    server = drill_server(graphgate_factory, tmp_path, RUN_LEASE, SESSION_LOCK_LEASE)
    async with httpx.AsyncClient(base_url=server.url, headers={"X-User-Id": user}) as http:
        run_path, took_over, handed_over_in = await signal_and_wait_for_the_take_over(
            server, http, marker, signal.SIGKILL, RUN_LEASE * 2 + SESSION_LOCK_LEASE * 2 + 10
        )
        joined = (await http.get(f"{run_path}/join", timeout=30)).json()
        finished = (await http.get(run_path)).json()
        thread_now = (await http.get(run_path.split("/runs/")[0])).json()
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


async def test_a_background_run_of_a_worker_told_to_stop_is_handed_over_at_once(
    graphgate_factory: StartGraphgate, upstream: Upstream, tmp_path: Any, user: str, marker: str
) -> None:
    agent_behaves(upstream, marker, tokens_per_second=4)
    lease, lock_lease = 6.0, 12.0  # a lapse would take 12 s: a hand-back takes one look
    server = drill_server(graphgate_factory, tmp_path, lease, lock_lease)
    async with httpx.AsyncClient(base_url=server.url, headers={"X-User-Id": user}) as http:
        run_path, took_over, handed_over_in = await signal_and_wait_for_the_take_over(
            server, http, marker, signal.SIGTERM, lock_lease + lease * 2
        )
        joined = (await http.get(f"{run_path}/join", timeout=30)).json()
    report(
        "background_hand_back",
        {
            "run_lease_seconds": lease,
            "session_lock_lease_seconds": lock_lease,
            "handed_over_in_seconds": round(handed_over_in, 2),
        },
    )
    assert "from its last checkpoint" in took_over
    assert joined["messages"][-1]["content"] == ANSWER
    assert handed_over_in < lease  # one look for lapsed leases (every RUN_LEASE/3), not a lapse
