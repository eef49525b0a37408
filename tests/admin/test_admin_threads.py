"""`/admin/principals/{principal}/threads`: a principal's sessions and threads on every route
(the chat's sessions, a chain route's, the LangGraph API's threads) are listed by route and id,
one's history opens, and deleting one removes it as its owner's delete would; another
principal's threads never appear. On every Redis flavour and embedded."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.admin.conftest import AdminApp
from tests.conftest import ALL_MODES

# The chat, a chain route with sessions, and the example agent for the LangGraph API.
ROUTES = """
[routes.notes]
path = "/notes"
chain = "examples.summarizer:make_chain"
sessions = true

[routes.agent]
graph = "examples.agent:make_graph"
"""


@pytest.fixture
def routes_file(tmp_path: Path) -> Path:
    (path := tmp_path / "routes.toml").write_text(ROUTES)
    return path


def session_turn(question: str, session: str) -> dict[str, Any]:
    return {"input": {"question": question}, "config": {"configurable": {"session_id": session}}}


async def make_threads(http: httpx.AsyncClient, user: dict[str, str], thread: str) -> None:
    for path, question in (("/chat", "hello chat"), ("/notes", "hello notes")):
        response = await http.post(
            f"{path}/invoke", json=session_turn(question, "s1"), headers=user
        )
        assert response.status_code == 200, response.text
    run = {
        "assistant_id": "agent",
        "input": {"messages": [{"role": "user", "content": "hi agent"}]},
    }
    made = await http.post("/threads", json={"thread_id": thread}, headers=user)
    assert made.status_code == 200, made.text
    ran = await http.post(f"/threads/{thread}/runs/wait", json=run, headers=user)
    assert ran.status_code == 200, ran.text


@pytest.mark.parametrize("mode", ALL_MODES)
async def test_a_principals_threads_list_open_and_delete(
    admin_app: AdminApp, principal: str, prefix: str, mode: str, routes_file: Path
) -> None:
    thread = str(uuid.uuid4())
    async with admin_app(mode, routes_file=routes_file, redis_prefix=prefix) as http:
        user = {"X-User-Id": principal}
        await make_threads(http, user, thread)
        await http.post(
            "/chat/invoke",
            json=session_turn("not yours", "s1"),
            headers={"X-User-Id": f"{principal}-x"},
        )

        base = f"/admin/principals/{principal}/threads"
        listed = (await http.get(base)).json()["threads"]
        assert sorted(listed, key=lambda t: t["route"]) == [
            {"route": "agent", "thread": thread},
            {"route": "chat", "thread": "s1"},
            {"route": "notes", "thread": "s1"},
        ]
        history = (await http.get(f"{base}/chat/s1")).json()["messages"]
        assert [m["type"] for m in history] == ["human", "ai"]
        assert history[0]["content"] == "hello chat"
        agent = (await http.get(f"{base}/agent/{thread}")).json()["messages"]
        assert agent[0]["content"] == "hi agent"

        assert (await http.delete(f"{base}/chat/s1")).status_code == 204
        assert (await http.get("/chat/sessions/s1", headers=user)).status_code == 404
        assert (await http.delete(f"{base}/agent/{thread}")).status_code == 204
        assert (await http.get(f"/threads/{thread}", headers=user)).status_code == 404
        assert (await http.get(base)).json()["threads"] == [{"route": "notes", "thread": "s1"}]
        # Another's session with the same id is untouched.
        other = await http.get("/chat/sessions/s1", headers={"X-User-Id": f"{principal}-x"})
        assert other.status_code == 200

        for missing in (f"{base}/chat/s1", f"{base}/nowhere/s1", f"{base}/chat/bad:id"):
            response = await http.get(missing)
            assert response.status_code in (404, 422), missing
