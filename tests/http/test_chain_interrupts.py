"""A chain route whose graph stops at `interrupt` (LangServe's clients): the turn answers with
no text and what the chain asks in `response_metadata.interrupts`, on invoke and at the end of
a stream; the session's next turn, `{"resume": ...}`, continues the chain from there and the
session keeps the question and the answer; a resume to a session that asked nothing is a 400."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from langchain_core.messages import AIMessageChunk
from langserve import RemoteRunnable

from tests.live_servers import Graphgate, StartGraphgate, route_file

ASKED = {"question": "May I answer?"}


@pytest.fixture
def asking_server(
    graphgate_factory: StartGraphgate, mode: str, tmp_path_factory: pytest.TempPathFactory
) -> Graphgate:
    routes = route_file(
        tmp_path_factory.mktemp("routes"),
        '[routes.asking]\npath = "/asking"\nchain = "tests.chains.asking_graph:make_graph"\n',
    )
    return graphgate_factory(mode, ROUTES_FILE=routes)


def session() -> Any:
    return {"configurable": {"session_id": f"s-{uuid.uuid4().hex[:8]}"}}


async def test_an_interrupted_chain_answers_what_it_asks_and_a_resume_continues_it(
    asking_server: Graphgate, user: str
) -> None:
    chain: Any = RemoteRunnable(f"{asking_server.url}/asking/", headers={"X-User-Id": user})
    config = session()
    stopped: Any = await chain.ainvoke({"question": "hi"}, config)
    assert stopped.content == ""
    assert stopped.response_metadata["finish_reason"] == "interrupt"
    assert [i["value"] for i in stopped.response_metadata["interrupts"]] == [ASKED]
    answered: Any = await chain.ainvoke({"resume": "yes"}, config)
    assert answered.content == "Echo: hi"  # the upstream double echoes the question
    session_id = config["configurable"]["session_id"]
    async with httpx.AsyncClient(headers={"X-User-Id": user}) as http:
        kept = (await http.get(f"{asking_server.url}/asking/sessions/{session_id}")).json()
    assert [m["content"] for m in kept["messages"]] == ["hi", answered.content]


async def test_a_streamed_turn_that_stops_ends_with_the_interrupt_and_resumes_streamed(
    asking_server: Graphgate, user: str
) -> None:
    chain: Any = RemoteRunnable(f"{asking_server.url}/asking/", headers={"X-User-Id": user})
    config = session()
    chunks: list[Any] = [c async for c in chain.astream({"question": "hi"}, config)]
    assert "".join(c.content for c in chunks) == ""
    assert chunks[-1].response_metadata["interrupts"][0]["value"] == ASKED
    resumed = [c async for c in chain.astream({"resume": "no"}, config)]
    assert all(isinstance(c, AIMessageChunk) for c in resumed)
    assert "".join(c.content for c in resumed) == "I was asked not to answer."


def test_a_resume_to_a_session_that_asked_nothing_or_with_a_question_is_refused(
    asking_server: Graphgate, user: str
) -> None:
    headers = {"X-User-Id": user}
    url = f"{asking_server.url}/asking/invoke"
    nothing_asked = httpx.post(
        url, json={"input": {"resume": "yes"}, "config": session()}, headers=headers
    )
    assert nothing_asked.status_code == 400
    assert "nothing to resume" in nothing_asked.json()["error"]["message"]
    both = httpx.post(
        url,
        json={"input": {"resume": "yes", "question": "hi"}, "config": session()},
        headers=headers,
    )
    assert both.status_code == 422
    no_session = httpx.post(url, json={"input": {"resume": "yes"}}, headers=headers)
    assert no_session.status_code == 400
    assert "session_id" in no_session.json()["error"]["message"]
