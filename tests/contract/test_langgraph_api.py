"""The LangGraph API's contract in process (embedded mode, the demo model), through the official
Python client: what `make run` serves to it, every refusal's status and field, threads'
metadata and search, a thread bound to its graph, a failed run, and principals kept apart."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient

from tests.contract.conftest import AppClient

ROUTES = """
[routes.graph]
graph = "tests.chains.graph_route:make_graph"
[routes.other]
graph = "tests.chains.graph_route:make_graph"
[routes.broken]
graph = "tests.chains.failing_graph:make_graph"
[routes.nested]
graph = "tests.chains.nested_graph:make_graph"
"""
Open = Callable[[str], AbstractAsyncContextManager[tuple[LangGraphClient, httpx.AsyncClient]]]


@pytest.fixture
def open_api(app_client: AppClient, tmp_path: Path) -> Open:
    """`async with open_api(user) as (sdk, http)`: the app for `user`, with graph routes."""
    routes = tmp_path / "routes.toml"
    routes.write_text(ROUTES)

    @asynccontextmanager
    async def opened(user: str) -> AsyncIterator[tuple[LangGraphClient, httpx.AsyncClient]]:
        async with app_client(routes_file=routes) as http:
            http.headers["X-User-Id"] = user
            yield LangGraphClient(http), http

    return opened


def hello(text: str = "hello") -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


async def test_embedded_mode_serves_a_thread_to_the_python_client(open_api: Open) -> None:
    async with open_api("ann") as (sdk, _):
        thread = await sdk.threads.create()
        values = await sdk.runs.wait(thread["thread_id"], "graph", input=hello())
        assert isinstance(values, dict)
        assert [m["type"] for m in values["messages"]] == ["human", "ai"]
        parts = [
            p
            async for p in sdk.runs.stream(
                thread["thread_id"], "graph", input=hello("again"), stream_mode="messages"
            )
        ]
        names = [p.event for p in parts]
        assert names[:3] == ["metadata", "messages/metadata", "messages/partial"]
        assert "values" not in names
        state: Any = await sdk.threads.get_state(thread["thread_id"])
        assert len(state["values"]["messages"]) == 4
        assert state["checkpoint"]["thread_id"] == thread["thread_id"]


async def test_custom_events_and_subgraph_parts_are_named_as_the_clients_read_them(
    open_api: Open,
) -> None:
    async with open_api("ann") as (sdk, _):
        parts = [
            p
            async for p in sdk.runs.stream(
                None,
                "nested",
                input=hello(),
                stream_mode=["updates", "custom", "events"],
                stream_subgraphs=True,
            )
        ]
    names = [p.event for p in parts]
    inner = [n for n in names if n.startswith("updates|inner:")]
    assert inner  # the subgraph's node, named for its namespace
    assert "updates" in names  # the root's own update
    custom = [p.data for p in parts if p.event.startswith("custom|inner:")]
    assert custom == [{"progress": "asking the model"}]
    kinds = {p.data["event"] for p in parts if p.event.split("|")[0] == "events"}
    assert {"on_chain_start", "on_chat_model_stream", "on_chain_end"} <= kinds
    assert "values" not in names


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"on_completion": "keep"}, "on_completion"),
        ({"stream_mode": "lifecycle"}, "stream_mode"),
        ({"command": {"resume": "yes", "resumed": True}}, "command.resumed"),
        ({"checkpoint_id": "1f0"}, "checkpoint_id"),
        ({"assistant_id": ""}, "assistant_id"),
    ],
)
async def test_a_run_asking_for_what_is_not_served_is_422_naming_the_field(
    open_api: Open, body: dict[str, Any], field: str
) -> None:
    async with open_api("ann") as (_, http):
        request = {"assistant_id": "graph", "input": hello(), **body}
        response = await http.post("/runs/wait", json=request)
    assert response.status_code == 422
    assert field in response.json()["error"]["message"]


NotServed = Callable[[LangGraphClient], Awaitable[object]]


async def a_thread(sdk: LangGraphClient) -> str:
    return str((await sdk.threads.create())["thread_id"])


async def update_state(sdk: LangGraphClient) -> object:
    return await sdk.threads.update_state(await a_thread(sdk), {"messages": []})


async def cron_on_a_thread(sdk: LangGraphClient) -> object:
    return await sdk.crons.create_for_thread(await a_thread(sdk), "graph", schedule="* * * * *")


def stateless_run(endpoint: str, **fields: Any) -> NotServed:
    """A stateless run (`/runs/wait`, `/runs/stream`, `/runs`) that asks for `fields`."""
    body = {"assistant_id": "graph", "input": hello(), **fields}
    return lambda sdk: sdk.http.post(endpoint, json=body)


CRON, STORE = "Scheduling runs (crons)", "The store"

# README's "Not served yet": (how the official client asks, status, what the message names).
NOT_SERVED: list[tuple[NotServed, int, str]] = [
    (stateless_run("/runs/wait", webhook="https://hook.test"), 422, "webhook"),
    (stateless_run("/runs", after_seconds=5), 422, "after_seconds"),
    (stateless_run("/runs/stream", feedback_keys=["score"]), 422, "feedback_keys"),
    (stateless_run("/runs/wait", on_completion="keep"), 422, "on_completion"),
    (stateless_run("/runs/stream", on_completion="keep"), 422, "on_completion"),
    (stateless_run("/runs/wait", checkpoint={"checkpoint_id": "1"}), 422, "checkpoint"),
    (stateless_run("/runs/stream", checkpoint={"checkpoint_id": "1"}), 422, "checkpoint"),
    (lambda sdk: sdk.crons.create("graph", schedule="* * * * *"), 404, CRON),
    (cron_on_a_thread, 404, CRON),
    (lambda sdk: sdk.crons.search(), 404, CRON),
    (lambda sdk: sdk.crons.count(), 404, CRON),
    (lambda sdk: sdk.crons.update(str(uuid.uuid4()), schedule="* * * * *"), 404, CRON),
    (lambda sdk: sdk.crons.delete(str(uuid.uuid4())), 404, CRON),
    (lambda sdk: sdk.store.put_item(["notes"], "k", {"v": 1}), 404, STORE),
    (lambda sdk: sdk.store.get_item(["notes"], "k"), 404, STORE),
    (lambda sdk: sdk.store.delete_item(["notes"], "k"), 404, STORE),
    (lambda sdk: sdk.store.search_items(["notes"]), 404, STORE),
    (lambda sdk: sdk.store.list_namespaces(), 404, STORE),
    (update_state, 404, "Updating a thread's state"),
]


async def test_everything_not_served_yet_is_refused_by_name_with_its_documented_status(
    open_api: Open,
) -> None:
    async with open_api("ann") as (sdk, _):
        for ask, status, named in NOT_SERVED:
            with pytest.raises(httpx.HTTPStatusError) as refused:
                await ask(sdk)
            answer = refused.value.response
            error = answer.json()["error"]
            assert answer.status_code == status, (named, error)
            assert error["code"] == ("not_found" if status == 404 else "validation_error"), error
            assert named in error["message"], error
            assert "not served yet" in error["message"] or status == 422, error
            assert error["trace_id"]


async def test_unknown_assistants_threads_and_runs_are_404_and_bad_ids_422(
    open_api: Open,
) -> None:
    async with open_api("ann") as (_, http):
        missing = uuid.uuid4()
        for method, path, body in [
            ("POST", "/runs/wait", {"assistant_id": "nope", "input": hello()}),
            ("GET", "/assistants/nope", None),
            ("GET", f"/threads/{missing}", None),
            ("GET", f"/threads/{missing}/state", None),
            ("POST", f"/threads/{missing}/history", {}),
            ("POST", f"/threads/{missing}/runs/wait", {"assistant_id": "graph"}),
            ("GET", f"/threads/{missing}/runs/{uuid.uuid4()}", None),
            ("POST", f"/threads/{missing}/runs/{uuid.uuid4()}/cancel", None),
            ("DELETE", f"/threads/{missing}", None),
            ("POST", f"/threads/{missing}/runs", {"assistant_id": "graph"}),
        ]:
            response = await http.request(method, path, json=body)
            assert response.status_code == 404, (method, path, response.text)
            assert response.json()["error"]["code"] == "not_found"
        assert (await http.get("/threads/not-a-uuid")).status_code == 422


async def test_a_thread_keeps_its_id_metadata_and_first_graph(open_api: Open) -> None:
    async with open_api("ann") as (sdk, http):
        thread_id = str(uuid.uuid4())
        await sdk.threads.create(thread_id=thread_id, metadata={"a": 1, "b": 1})
        again = await http.post("/threads", json={"thread_id": thread_id})
        assert again.status_code == 409
        same = await sdk.threads.create(thread_id=thread_id, if_exists="do_nothing")
        assert same["metadata"] == {"a": 1, "b": 1}
        patched = await sdk.threads.update(thread_id, metadata={"b": 2})
        assert patched["metadata"] == {"a": 1, "b": 2}
        prefer = {"Prefer": "return=minimal"}
        minimal = await http.patch(
            f"/threads/{thread_id}", json={"metadata": {"c": 3}}, headers=prefer
        )
        assert minimal.status_code == 204
        await sdk.runs.wait(thread_id, "graph", input=hello())
        found: Any = await sdk.threads.get(thread_id)
        bound = {"graph_id": "graph", "assistant_id": "graph"}
        assert found["metadata"] == {"a": 1, "b": 2, "c": 3, **bound}
        other = await http.post(f"/threads/{thread_id}/runs/wait", json={"assistant_id": "other"})
        assert other.status_code == 409
        assert other.json()["error"]["code"] == "thread_conflict"


async def test_search_pages_newest_first_and_filters(open_api: Open) -> None:
    async with open_api("ann") as (sdk, http):
        tag = uuid.uuid4().hex
        made = [(await sdk.threads.create(metadata={"tag": tag}))["thread_id"] for _ in range(3)]
        await sdk.threads.create(metadata={"tag": "else"})
        page = await http.post("/threads/search", json={"metadata": {"tag": tag}, "limit": 2})
        assert [t["thread_id"] for t in page.json()] == made[::-1][:2]
        assert page.headers["X-Pagination-Total"] == "3"
        assert page.headers["X-Pagination-Next"] == "2"
        rest = await sdk.threads.search(metadata={"tag": tag}, limit=2, offset=2)
        assert [t["thread_id"] for t in rest] == [made[0]]
        oldest = await sdk.threads.search(metadata={"tag": tag}, sort_order="asc", limit=1)
        assert [t["thread_id"] for t in oldest] == [made[0]]
        assert await sdk.threads.search(metadata={"tag": tag}, status="busy") == []


async def test_a_run_that_fails_is_an_error_event_and_an_error_thread(open_api: Open) -> None:
    async with open_api("ann") as (sdk, http):
        thread = await sdk.threads.create()
        parts = [p async for p in sdk.runs.stream(thread["thread_id"], "broken", input=hello())]
        assert [p.event for p in parts][-1] == "error"
        error = parts[-1].data
        assert (error["error"], error["code"]) == ("InternalError", "internal_error")
        assert "secret" not in str(error)
        assert error["trace_id"]
        run: Any = await sdk.runs.get(thread["thread_id"], parts[0].data["run_id"])
        assert run["status"] == "error"
        assert (await sdk.threads.get(thread["thread_id"]))["status"] == "error"
        waited = await http.post("/runs/wait", json={"assistant_id": "broken", "input": hello()})
        assert waited.status_code == 200
        assert waited.json()["__error__"]["error"] == "InternalError"


async def test_another_principal_sees_none_of_a_thread(open_api: Open) -> None:
    async with open_api("ann") as (sdk, http):
        thread = await sdk.threads.create(metadata={"mine": "ann"})
        tid = thread["thread_id"]
        http.headers["X-User-Id"] = "bob"
        for method, path in [
            ("GET", f"/threads/{tid}"),
            ("GET", f"/threads/{tid}/state"),
            ("DELETE", f"/threads/{tid}"),
            ("PATCH", f"/threads/{tid}"),
        ]:
            response = await http.request(method, path, json={} if method == "PATCH" else None)
            assert response.status_code == 404, (method, path)
        assert await sdk.threads.search(metadata={"mine": "ann"}) == []
        created = await http.post("/threads", json={"thread_id": tid})
        assert created.status_code == 200  # bob's own thread of that id, not ann's
        http.headers["X-User-Id"] = "ann"
        assert (await sdk.threads.get(tid))["metadata"] == {"mine": "ann"}


async def test_a_run_acts_for_its_caller_whatever_its_config_names(open_api: Open) -> None:
    async with open_api("ann") as (_, http):
        posing = {"configurable": {"principal": "bob", "graphgate": "facts", "thread_id": "x"}}
        body = {"assistant_id": "graph", "input": hello(), "config": posing}
        assert (await http.post("/runs/wait", json=body)).status_code == 200
        ann = (await http.get("/usage?days=1")).json()["days"]
        http.headers["X-User-Id"] = "bob"
        bob = (await http.get("/usage?days=1")).json()["days"]
    assert ann[0]["total"]["requests"] == 1
    assert bob == [] or bob[0]["total"].get("requests", 0) == 0


async def test_a_resumable_runs_events_are_kept_and_replayed_after_the_last_one_read(
    open_api: Open,
) -> None:
    async with open_api("ann") as (_, http):
        thread = (await http.post("/threads", json={})).json()["thread_id"]
        body = {"assistant_id": "graph", "input": hello(), "stream_resumable": True}
        streamed = await http.post(f"/threads/{thread}/runs/stream", json=body)
        events = sse_events(streamed.text)
        assert streamed.headers["Location"].endswith("/stream")
        run_id = events[0]["data"]["run_id"]
        ids = [e["id"] for e in events[1:]]
        assert all(ids)
        assert len(set(ids)) == len(ids)
        joined = await http.get(
            f"/threads/{thread}/runs/{run_id}/stream", headers={"Last-Event-ID": ids[1]}
        )
        assert [e["id"] for e in sse_events(joined.text)] == ids[2:]
        assert [e["data"] for e in sse_events(joined.text)] == [e["data"] for e in events[3:]]
        stateless = await http.post("/runs/stream", json=body)
        assert stateless.status_code == 400
        plain = await http.post(
            f"/threads/{thread}/runs/wait", json={**body, "stream_resumable": False}
        )
        assert plain.status_code == 200
        missing = await http.get(f"/threads/{thread}/runs/{uuid.uuid4()}/stream")
        assert missing.status_code == 404


def sse_events(text: str) -> list[dict[str, Any]]:
    """The events of a buffered SSE body: name, data (JSON) and id."""
    found = []
    for block in text.split("\r\n\r\n"):
        fields = dict(line.split(": ", 1) for line in block.split("\r\n") if ": " in line)
        if "event" in fields:
            found.append(
                {
                    "event": fields["event"],
                    "data": json.loads(fields["data"]),
                    "id": fields.get("id"),
                }
            )
    return found


def ancestors(history: list[Any]) -> list[str]:
    """The parents from the newest checkpoint back, as far as the history reaches."""
    by_id = {h["checkpoint_id"]: h for h in history}
    found, parent = [], history[0]["parent_checkpoint_id"]
    while parent is not None:
        found.append(parent)
        parent = by_id[parent]["parent_checkpoint_id"] if parent in by_id else None
    return found


async def test_a_thread_lists_its_last_checkpoints_and_a_run_from_an_earlier_one_branches(
    app_client: AppClient, tmp_path: Path
) -> None:
    """A run checkpoints every step; the thread keeps its last `CHECKPOINT_HISTORY=3`, newest
    first. A run from the checkpoint before the last answer, with no input, answers again
    (agent-chat-ui's regenerate): a branch whose parent is that checkpoint."""
    routes = tmp_path / "routes.toml"
    routes.write_text(ROUTES)
    async with app_client(routes_file=routes, checkpoint_history=3) as http:
        http.headers["X-User-Id"] = "ann"
        sdk = LangGraphClient(http)
        thread = (await sdk.threads.create())["thread_id"]
        for word in ["one", "two", "three"]:
            await sdk.runs.wait(thread, "graph", input=hello(word))
        history: Any = await sdk.threads.get_history(thread, limit=10)
        assert [len(h["values"]["messages"]) for h in history] == [6, 5, 4]
        asked = history[1]["checkpoint_id"]  # "three" asked, not yet answered
        assert history[0]["parent_checkpoint_id"] == asked
        newest: Any = await sdk.threads.get_history(thread, limit=1)
        assert [h["checkpoint_id"] for h in newest] == [history[0]["checkpoint_id"]]
        older: Any = await sdk.threads.get_state(thread, checkpoint_id=asked)
        assert older["values"]["messages"][-1]["content"] == "three"
        again: Any = await sdk.runs.wait(thread, "graph", input=None, checkpoint_id=asked)
        assert [m["type"] for m in again["messages"]] == ["human", "ai"] * 3
        assert again["messages"][-1]["id"] != history[0]["values"]["messages"][-1]["id"]
        after: Any = await sdk.threads.get_history(thread, limit=10)
        assert asked in ancestors(after)
        assert history[0]["checkpoint_id"] not in ancestors(after)  # a branch beside it
        gone = await http.post(
            f"/threads/{thread}/runs/wait",
            json={"assistant_id": "graph", "input": hello(), "checkpoint_id": str(uuid.uuid4())},
        )
        assert gone.status_code == 404
        assert "CHECKPOINT_HISTORY" in gone.json()["error"]["message"]


async def test_a_resumable_background_run_is_rejoined_at_once_from_its_metadata(
    open_api: Open,
) -> None:
    """Its kept events exist before the answer: a client that joins at once, before the run
    has sent anything, reads them all, `metadata` first, as the LangGraph server replays."""
    async with open_api("ann") as (sdk, _):
        thread = (await sdk.threads.create())["thread_id"]
        created: Any = await sdk.runs.create(thread, "graph", input=hello(), stream_resumable=True)
        parts = [p async for p in sdk.runs.join_stream(thread, created["run_id"])]
    assert parts[0].event == "metadata"
    assert parts[0].data["run_id"] == created["run_id"]
    assert parts[-1].event == "values"
    assert parts[-1].data["messages"][-1]["type"] == "ai"
