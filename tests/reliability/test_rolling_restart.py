"""Drill: a rolling restart. Two graphgate servers share one Redis; one gets SIGTERM while 100
streams and 10 multi-turn sessions run on both. The draining one finishes its streams and
turns new requests away (503 `shutting_down`), which a load balancer sends to the other: no
stream breaks and no acknowledged turn is lost."""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
from typing import Any

import httpx
from httpx_sse import aconnect_sse

from scripts.processes import ChildProcess, rss_mb, worker_pids
from tests.live_servers import Graphgate, StartGraphgate
from tests.reliability.drill import report
from tests.upstream import Upstream

STREAMS, TOKENS, TOKENS_PER_SECOND = 100, 30, 10  # each stream lasts 3 s
SESSIONS, TURNS = 10, 30  # each session lasts 3 s or more
# At least QUEUE_TIMEOUT + REQUEST_TIMEOUT + 5 s, or gunicorn refuses to start.
GRACEFUL_TIMEOUT = 30


class LoadBalancer:
    """Round robin over the servers; a server that refuses the connection, answers 503
    `shutting_down`, or closes a kept-alive connection before answering (the signalled
    server closing its idle connections as it exits, while a request was on its way) is
    skipped for that request, as an ingress's next-upstream retry would."""

    def __init__(self, servers: list[Graphgate]) -> None:
        self.servers = servers
        self._next = itertools.cycle(range(len(servers)))
        self.redirected = 0
        self.closed_before_answer = 0

    async def post(self, client: httpx.AsyncClient, path: str, **kwargs: Any) -> httpx.Response:
        first = next(self._next)
        for offset in range(len(self.servers)):
            server = self.servers[(first + offset) % len(self.servers)]
            try:
                response = await client.post(f"{server.url}{path}", **kwargs)
            except httpx.ConnectError:
                self.redirected += 1
                continue
            except (httpx.ReadError, httpx.RemoteProtocolError):
                self.closed_before_answer += 1
                continue
            if response.status_code == 503 and "shutting_down" in response.text:
                self.redirected += 1
                continue
            return response
        raise AssertionError("no server took the request")


async def stream_tokens(client: httpx.AsyncClient, url: str, question: str) -> list[str]:
    """What a stream delivered: its tokens, then `<end>` if it ended properly."""
    tokens: list[str] = []
    body = {"input": {"question": question}}
    async with aconnect_sse(client, "POST", f"{url}/chat/stream", json=body) as source:
        async for event in source.aiter_sse():
            if event.event == "data" and event.json()["content"]:
                tokens.append(event.json()["content"])
            elif event.event in ("end", "error"):
                tokens.append(f"<{event.event}>")
    return tokens


async def converse(
    client: httpx.AsyncClient, balancer: LoadBalancer, index: int, marker: str
) -> list[str]:
    """One session's turns, each through the balancer; the questions acknowledged."""
    acknowledged = []
    for turn in range(TURNS):
        question = f"session {index} turn {turn} {marker}"
        body = {"input": {"question": question}, "config": {"configurable": {"session_id": "s"}}}
        headers = {"X-User-Id": f"u{index}{marker}"}
        response = await balancer.post(client, "/chat/invoke", json=body, headers=headers)
        if response.status_code == 200:
            acknowledged.append(question)
    return acknowledged


async def exit_of(process: ChildProcess) -> tuple[int, float]:
    """The process's exit code once it has exited, and when (monotonic)."""
    code = await asyncio.to_thread(process.wait, GRACEFUL_TIMEOUT + 5)
    return code, time.monotonic()


async def test_a_rolling_restart_breaks_no_stream_and_loses_no_turn(
    graphgate_factory: StartGraphgate, upstream: Upstream, marker: str
) -> None:
    settings = {
        "MAX_CONCURRENCY": str(STREAMS),
        "GRACEFUL_TIMEOUT": str(GRACEFUL_TIMEOUT),
        "QUEUE_TIMEOUT": "20",
        "REQUEST_TIMEOUT": "5",
        "MAX_HISTORY_MESSAGES": str(4 * TURNS),
    }
    leaving = graphgate_factory("redis", fresh=True, workers=1, **settings)
    staying = graphgate_factory("redis", fresh=True, workers=1, **settings)
    upstream.behave(f"stream {marker}", tokens=TOKENS, tokens_per_second=TOKENS_PER_SECOND)
    upstream.behave(f"turn {marker}", latency_ms=100)
    balancer = LoadBalancer([leaving, staying])
    limits = httpx.Limits(max_connections=STREAMS + SESSIONS + 5)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        streams = [
            asyncio.create_task(
                stream_tokens(client, (leaving, staying)[i % 2].url, f"stream {marker} {i}")
            )
            for i in range(STREAMS)
        ]
        sessions = [
            asyncio.create_task(converse(client, balancer, i, marker)) for i in range(SESSIONS)
        ]
        opened = await upstream.wait_for(f"stream {marker}", "in_flight", STREAMS, within=20)
        assert opened is not None, "the streams never all opened"
        assert leaving.process.process is not None
        leaving.process.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        exiting = asyncio.create_task(exit_of(leaving.process.process))
        delivered = await asyncio.gather(*streams)
        acknowledged = await asyncio.gather(*sessions)
        assert staying.process.process is not None
        rss = {pid: rss_mb(pid) for pid in worker_pids(staying.process.process.pid)}
        histories = [
            await client.get(
                f"{staying.url}/chat/sessions/s", headers={"X-User-Id": f"u{i}{marker}"}
            )
            for i in range(SESSIONS)
        ]
    exit_code, exited_at = await exiting
    drained_in = exited_at - signalled
    expected = ["w1", *[f" w{i}" for i in range(2, TOKENS + 1)], "<end>"]
    broken = sum(tokens != expected for tokens in delivered)
    lost = 0
    for questions, history in zip(acknowledged, histories, strict=True):
        stored = [m["content"] for m in history.json()["messages"] if m["type"] == "human"]
        lost += len(set(questions) - set(stored))
    report(
        "rolling_restart",
        {
            "streams": STREAMS,
            "broken_streams": broken,
            "turns_acknowledged": sum(len(q) for q in acknowledged),
            "turns_lost": lost,
            "requests_redirected_by_the_balancer": balancer.redirected,
            "connections_closed_before_an_answer": balancer.closed_before_answer,
            "drained_in_seconds": round(drained_in, 2),
            "exit_code": exit_code,
            "staying_worker_rss_mb": rss,
        },
    )
    assert broken == 0
    assert lost == 0
    assert sum(len(q) for q in acknowledged) == SESSIONS * TURNS
    assert balancer.redirected > 0  # the restart happened while the sessions ran
    assert exit_code == 0
    assert drained_in < GRACEFUL_TIMEOUT
