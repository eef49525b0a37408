"""`langgraph dev` (in its own venv) serves the same chat graph from langgraph.json, and the
graph's own guard and limit still hold there, where no graphgate HTTP layer runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client

from tests.processes import ROOT, ManagedProcess, child_env, free_port
from tests.upstream import Upstream

LANGGRAPH = ROOT / ".venv-langgraph" / "bin" / "langgraph"
LIMIT = 5


@pytest.fixture(scope="module")
def langgraph_dev(upstream: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    command = [str(LANGGRAPH), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1"]
    server = ManagedProcess(
        [*command, "--port", str(port)],
        env=child_env(
            OPENAI_BASE_URL=upstream.api_url,
            LLM_MODEL="gpt-primary",
            RATE_LIMIT_MAX=str(LIMIT),
            LANGGRAPH_CLI_NO_ANALYTICS="1",
        ),
        ready_text="Application started up",
        log_path=Path(tmp_path_factory.mktemp("langgraph")) / "langgraph-dev.log",
    )
    server.start(timeout=120)
    yield f"http://127.0.0.1:{port}"
    server.stop()


def run(url: str, question: str, principal: str = "anonymous") -> dict[str, Any]:
    """A stateless run; under langgraph dev the principal comes from the run's config."""
    body = {
        "assistant_id": "chat",
        "input": {"question": question},
        "config": {"configurable": {"principal": principal}},
    }
    response = httpx.post(f"{url}/runs/wait", json=body, timeout=60)
    result: dict[str, Any] = response.json()
    return result


async def test_a_langgraph_sdk_client_keeps_memory_in_a_thread(
    langgraph_dev: str, upstream: Upstream, marker: str
) -> None:
    client = get_client(url=langgraph_dev)
    thread = await client.threads.create()
    for question in (f"one {marker}", f"two {marker}"):
        await client.runs.wait(thread["thread_id"], "chat", input={"question": question})
    prompt = [message["content"] for message in upstream.prompts(marker)[-1]]
    assert prompt == [f"one {marker}", f"Echo: one {marker}", f"two {marker}"]
    with pytest.raises(Exception, match="InputTooLong"):  # the SDK raises the run's error
        await client.runs.wait(thread["thread_id"], "chat", input={"question": "word " * 2100})


def test_the_chat_graph_answers_and_its_limit_holds(
    langgraph_dev: str, user: str, marker: str
) -> None:
    answers = [run(langgraph_dev, f"q{turn} {marker}", user) for turn in range(LIMIT + 1)]
    replies = [answer["reply"]["content"] for answer in answers[:LIMIT]]
    assert replies == [f"Echo: q{turn} {marker}" for turn in range(LIMIT)]
    assert answers[LIMIT]["__error__"]["error"] == "RateLimited"


def test_the_guard_holds(langgraph_dev: str) -> None:
    answer = run(langgraph_dev, "word " * 2100)
    assert answer["__error__"]["error"] == "InputTooLong"
