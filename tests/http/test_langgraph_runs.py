"""LangGraph API runs end to end on Redis: `enqueue` runs of one thread, sent at once to two
gunicorn workers, run one after the other (the session lock, across processes), each on the
state the one before it left; and a thread's run, state, search and deletion on every Redis
flavour (plain Redis without modules and the Cluster too)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from httpx_sse import ServerSentEvent, aconnect_sse
from langgraph_sdk import get_client

from tests.auth.test_api_keys import worker_of
from tests.conftest import REDIS_FLAVOURS
from tests.example_agent import ANSWER, agent_behaves, agent_routes, ask
from tests.live_servers import Graphgate, StartGraphgate
from tests.upstream import Upstream

RUNS = 4


def agent_run(marker: str, **options: Any) -> dict[str, Any]:
    """A run of the example agent on a thread it creates if need be, with `options`."""
    return {"assistant_id": "agent", "input": ask(marker), "if_not_exists": "create", **options}


@pytest.fixture(scope="module")
def routes(tmp_path_factory: pytest.TempPathFactory) -> str:
    return agent_routes(tmp_path_factory.mktemp("routes"))


async def clients_by_worker(
    server: Graphgate, headers: dict[str, str], each: int
) -> dict[int, list[httpx.AsyncClient]]:
    """`each` clients of one kept-alive connection each to each of the two workers (which
    worker accepts a connection is the kernel's choice: connect until both have)."""
    by_worker: dict[int, list[httpx.AsyncClient]] = {}
    for _ in range(100):
        limits = httpx.Limits(max_connections=1)
        client = httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60, limits=limits)
        answer = await client.get("/info")
        clients = by_worker.setdefault(worker_of(server, answer.headers["X-Trace-Id"]), [])
        if len(clients) < each:
            clients.append(client)
        else:
            await client.aclose()
        if len(by_worker) == 2 and all(len(c) == each for c in by_worker.values()):
            return by_worker
    raise AssertionError("one worker accepted every connection")


async def test_enqueued_runs_of_one_thread_run_in_turn_across_two_workers(
    graphgate_factory: StartGraphgate, routes: str, upstream: Upstream, user: str, marker: str
) -> None:
    agent_behaves(upstream, marker, tokens_per_second=50)
    server = graphgate_factory("redis", workers=2, ROUTES_FILE=routes)
    thread = str(uuid.uuid4())
    body = agent_run(marker, multitask_strategy="enqueue")
    by_worker = await clients_by_worker(server, {"X-User-Id": user}, RUNS // 2)
    clients = [client for each in by_worker.values() for client in each]
    url = f"/threads/{thread}/runs/wait"
    try:
        answers = await asyncio.gather(*(client.post(url, json=body) for client in clients))
    finally:
        for client in clients:
            await client.aclose()
    assert [a.status_code for a in answers] == [200] * RUNS
    assert len({worker_of(server, a.headers["X-Trace-Id"]) for a in answers}) == 2
    assert upstream.stats(marker)["peak_in_flight"] == 1
    async with get_client(url=server.url, headers={"X-User-Id": user}) as sdk:
        state: Any = await sdk.threads.get_state(thread)
    messages = state["values"]["messages"]
    assert [m["type"] for m in messages] == ["human", "ai", "tool", "ai"] * RUNS
    assert {m["content"] for m in messages[3::4]} == {ANSWER}


@pytest.mark.parametrize("flavour", [f for f in REDIS_FLAVOURS if f != "redis"])
async def test_a_threads_run_state_search_and_deletion_on_every_redis(
    graphgate_factory: StartGraphgate,
    routes: str,
    upstream: Upstream,
    flavour: str,
    user: str,
    marker: str,
) -> None:
    agent_behaves(upstream, marker)
    server = graphgate_factory(flavour, ROUTES_FILE=routes)
    async with get_client(url=server.url, headers={"X-User-Id": user}) as sdk:
        thread = await sdk.threads.create(metadata={"flavour": marker})
        parts = [p async for p in sdk.runs.stream(thread["thread_id"], "agent", input=ask(marker))]
        assert parts[-1].data["messages"][-1]["content"] == ANSWER
        state: Any = await sdk.threads.get_state(thread["thread_id"])
        assert len(state["values"]["messages"]) == 4
        found = await sdk.threads.search(metadata={"flavour": marker})
        assert [t["thread_id"] for t in found] == [thread["thread_id"]]
        run = await sdk.runs.get(thread["thread_id"], parts[0].data["run_id"])
        assert run["status"] == "success"
        await sdk.threads.delete(thread["thread_id"])
        assert await sdk.threads.search(metadata={"flavour": marker}) == []


@dataclass
class TwoWorkers:
    """A server of two gunicorn workers, and a client kept connected to each."""

    server: Graphgate
    first: httpx.AsyncClient
    second: httpx.AsyncClient


@pytest.fixture
async def two_workers(
    graphgate_factory: StartGraphgate, routes: str, user: str
) -> AsyncIterator[TwoWorkers]:
    server = graphgate_factory("redis", workers=2, ROUTES_FILE=routes)
    (first,), (second,) = (await clients_by_worker(server, {"X-User-Id": user}, 1)).values()
    yield TwoWorkers(server, first, second)
    await first.aclose()
    await second.aclose()


async def test_a_cancel_that_reaches_another_worker_stops_the_run(
    two_workers: TwoWorkers, upstream: Upstream, marker: str
) -> None:
    agent_behaves(upstream, marker, tokens_per_second=2)
    running, cancelling = two_workers.first, two_workers.second
    thread = str(uuid.uuid4())
    body = agent_run(marker)
    async with aconnect_sse(running, "POST", f"/threads/{thread}/runs/stream", json=body) as source:
        events = source.aiter_sse()
        run_id = (await anext(events)).json()["run_id"]
        await upstream.wait_for(marker, "in_flight", within=10)
        cancel = await cancelling.post(f"/threads/{thread}/runs/{run_id}/cancel?wait=1")
        names = [event.event async for event in events]
    assert cancel.status_code == 200
    assert cancel.json()["status"] == "interrupted"
    assert "error" not in names
    assert upstream.stats(marker)["cancelled"] == 1


async def test_a_run_with_reject_on_a_thread_busy_on_another_worker_is_409(
    two_workers: TwoWorkers, upstream: Upstream, marker: str
) -> None:
    agent_behaves(upstream, marker, tokens_per_second=5)
    first, second = two_workers.first, two_workers.second
    thread = str(uuid.uuid4())
    body = agent_run(marker)
    url = f"/threads/{thread}/runs/wait"
    running = asyncio.ensure_future(first.post(url, json=body))
    await upstream.wait_for(marker, "in_flight", within=10)
    refused = await second.post(url, json={**body, "multitask_strategy": "reject"})
    finished = await running
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "session_busy"
    assert finished.status_code == 200
    assert upstream.stats(marker)["completed"] == 2  # the first run's calls only


async def test_a_client_gone_before_its_run_began_leaves_the_thread_free(
    graphgate_factory: StartGraphgate, routes: str, upstream: Upstream, user: str, marker: str
) -> None:
    """The request is sent and the connection closed at once: whether the run was cancelled
    before it began or while it ran, it ends `interrupted` and the thread takes the next run
    (a run that never began once held the thread's lock for good)."""
    agent_behaves(upstream, marker)
    server = graphgate_factory("redis", ROUTES_FILE=routes)
    thread = str(uuid.uuid4())
    body = json.dumps(agent_run(marker)).encode()
    host, port = server.url.removeprefix("http://").split(":")
    request = (
        f"POST /threads/{thread}/runs/wait HTTP/1.1\r\nHost: {host}\r\nX-User-Id: {user}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    _, writer = await asyncio.open_connection(host, int(port))
    writer.write(request + body)
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    # The next run is sent once the server is done with this request: sent at once, it could
    # be admitted first, and this one after it, which would find the thread busy for a moment.
    gone = f"/threads/{thread}/runs/wait"
    await asyncio.to_thread(server.process.wait_for_line, lambda line: gone in line)
    async with get_client(url=server.url, headers={"X-User-Id": user}) as sdk:
        after: Any = await sdk.runs.wait(
            thread, "agent", input=ask(marker), multitask_strategy="enqueue", if_not_exists="create"
        )
        found: Any = await sdk.threads.get(thread)
    assert after["messages"][-1]["content"] == ANSWER
    assert found["status"] == "idle"


async def until_the_answer(events: AsyncIterator[ServerSentEvent]) -> list[ServerSentEvent]:
    """A run's events up to its answer's first token (the first is `metadata`, the run's)."""
    read = []
    async for event in events:
        read.append(event)
        chunk = event.json()[0] if event.event == "messages" else {}
        if chunk.get("type") == "AIMessageChunk" and chunk["content"]:
            return read
    raise AssertionError("the run ended before its answer began")


@pytest.mark.parametrize(
    ("strategy", "kept"),
    [
        ("interrupt", ["human", "ai", "tool", "human", "ai", "tool", "ai"]),
        ("rollback", ["human", "ai", "tool", "ai"]),
    ],
)
async def test_a_second_run_that_interrupts_or_rolls_back_the_first_across_workers(
    two_workers: TwoWorkers,
    upstream: Upstream,
    user: str,
    marker: str,
    strategy: str,
    kept: list[str],
) -> None:
    """`interrupt` stops the first run and keeps what it did (its tool call and result);
    `rollback` stops it and leaves no trace of it (no messages, no run record)."""
    agent_behaves(upstream, marker, tokens_per_second=4)
    first, second = two_workers.first, two_workers.second
    thread = str(uuid.uuid4())
    body = agent_run(marker, stream_mode="messages-tuple")
    async with aconnect_sse(first, "POST", f"/threads/{thread}/runs/stream", json=body) as source:
        events = source.aiter_sse()
        first_run = (await until_the_answer(events))[0].json()["run_id"]
        later = {**body, "multitask_strategy": strategy}
        second_run = await second.post(f"/threads/{thread}/runs/wait", json=later)
        rest = [event.event async for event in events]
    assert second_run.status_code == 200
    assert "error" not in rest
    messages = second_run.json()["messages"]
    assert [m["type"] for m in messages] == kept
    assert messages[-1]["content"] == ANSWER
    async with get_client(url=two_workers.server.url, headers={"X-User-Id": user}) as sdk:
        if strategy == "interrupt":
            assert (await sdk.runs.get(thread, first_run))["status"] == "interrupted"
        else:
            with pytest.raises(httpx.HTTPStatusError):
                await sdk.runs.get(thread, first_run)
    assert upstream.stats(marker)["cancelled"] == 1


async def test_a_resumable_run_goes_on_without_its_client_and_is_rejoined_on_another_worker(
    two_workers: TwoWorkers, upstream: Upstream, user: str, marker: str
) -> None:
    """The client leaves mid-answer (`on_disconnect: "continue"`), rejoins on the other worker
    from the last event it had, and gets every later event exactly once."""
    agent_behaves(upstream, marker, tokens_per_second=10)
    first, second = two_workers.first, two_workers.second
    thread = str(uuid.uuid4())
    body = agent_run(
        marker, stream_mode="messages-tuple", stream_resumable=True, on_disconnect="continue"
    )
    async with aconnect_sse(first, "POST", f"/threads/{thread}/runs/stream", json=body) as source:
        before = await until_the_answer(source.aiter_sse())  # then the connection breaks
    run_id = before[0].json()["run_id"]
    rejoin = {"Last-Event-ID": before[-1].id}
    url = f"/threads/{thread}/runs/{run_id}/stream"
    async with aconnect_sse(second, "GET", url, headers=rejoin) as source:
        after = [event async for event in source.aiter_sse()]
    ids = [e.id for e in before[1:] + after]
    assert len(set(ids)) == len(ids)  # no event twice
    tokens = [
        e.json()[0]["content"]
        for e in before + after
        if e.event == "messages" and e.json()[0]["type"] == "AIMessageChunk"
    ]
    assert "".join(tokens) == ANSWER  # none missing
    async with get_client(url=two_workers.server.url, headers={"X-User-Id": user}) as sdk:
        assert (await sdk.runs.get(thread, run_id))["status"] == "success"
        state: Any = await sdk.threads.get_state(thread)
    assert [m["type"] for m in state["values"]["messages"]] == ["human", "ai", "tool", "ai"]
    assert upstream.stats(marker)["cancelled"] == 0


class CuttingProxy:
    """A TCP proxy in front of the server that cuts the first run stream it carries once it
    has passed `cut_after` bytes of the answer (as a proxy's idle timeout or a network change
    would); every other connection passes whole."""

    def __init__(self, target_port: int, cut_after: int) -> None:
        self._target_port = target_port
        self._cut_after = cut_after
        self.cuts = 0  # run streams chosen to be cut
        self.cut_short = False  # and the one cut before its end

    async def serve(self) -> asyncio.Server:
        return await asyncio.start_server(self._connection, "127.0.0.1", 0)

    async def _connection(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self._target_port)
        request = await client_reader.read(65536)
        cutting = self.cuts == 0 and b"/runs/stream" in request.split(b"\r\n", 1)[0]
        self.cuts += cutting
        server_writer.write(request)
        upstream = asyncio.ensure_future(self._pump(client_reader, server_writer, None))
        limit = self._cut_after if cutting else None
        self.cut_short |= await self._pump(server_reader, client_writer, limit)
        upstream.cancel()
        for writer in (client_writer, server_writer):
            writer.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, limit: int | None
    ) -> bool:
        """Pass `reader` on to `writer` until it ends, or `limit` bytes (then True)."""
        passed = 0
        while data := await reader.read(4096):
            writer.write(data)
            await writer.drain()
            passed += len(data)
            if limit is not None and passed >= limit:
                return True
        return False


async def test_the_python_client_rejoins_a_resumable_run_by_itself_when_its_stream_is_cut(
    graphgate_factory: StartGraphgate, routes: str, upstream: Upstream, user: str, marker: str
) -> None:
    agent_behaves(upstream, marker, tokens_per_second=10)
    server = graphgate_factory("redis", ROUTES_FILE=routes)
    proxy = CuttingProxy(int(server.url.rsplit(":", 1)[1]), cut_after=3000)
    listening = await proxy.serve()
    port = listening.sockets[0].getsockname()[1]
    try:
        # A connection per request, so the proxy sees each request first on its connection.
        headers = {"X-User-Id": user, "Connection": "close"}
        async with get_client(url=f"http://127.0.0.1:{port}", headers=headers) as sdk:
            thread = await sdk.threads.create()
            parts = [
                part
                async for part in sdk.runs.stream(
                    thread["thread_id"],
                    "agent",
                    input=ask(marker),
                    stream_mode=["values", "messages-tuple"],
                    stream_resumable=True,
                    on_disconnect="continue",
                )
            ]
    finally:
        listening.close()
    assert proxy.cuts == 1
    assert proxy.cut_short  # the stream was cut before the run's end
    tokens = [
        p.data[0]["content"]
        for p in parts
        if p.event == "messages" and p.data[0]["type"] == "AIMessageChunk"
    ]
    assert "".join(tokens) == ANSWER
    values = [p.data for p in parts if p.event == "values"]
    assert [m["type"] for m in values[-1]["messages"]] == ["human", "ai", "tool", "ai"]
    assert upstream.stats(marker)["cancelled"] == 0
