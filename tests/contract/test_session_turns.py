"""One turn at a time per session, in process: a busy session's 409 or 503 `session_busy`, and
the lock taken by a run that does not come through HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

from api.chat_runnable import ChatRunnable
from graphs.service import open_graphs
from graphs.settings import Settings
from tests.contract.conftest import AppClient

TURN = {"input": {"question": "Hello"}, "config": {"configurable": {"session_id": "s1"}}}


async def test_a_second_turn_of_a_busy_session_is_409_with_reject_503_after_a_wait(
    app_client: AppClient,
) -> None:
    for conflict, status in (("reject", 409), ("enqueue", 503)):
        # The demo model takes about a second for its reply: the first turn holds the session.
        async with app_client(
            demo_tokens_per_second=30, session_conflict=conflict, queue_timeout=0.2
        ) as client:
            first, second = await asyncio.gather(
                client.post("/chat/invoke", json=TURN), client.post("/chat/stream", json=TURN)
            )
        assert first.status_code == 200
        assert second.status_code == status
        assert second.json()["error"]["code"] == "session_busy"
        assert second.headers["Retry-After"] == "1"


async def test_concurrent_in_process_turns_of_one_session_all_land_in_its_history() -> None:
    settings = Settings(
        app_env="test",
        openai_base_url=None,
        openai_api_key=None,
        redis_url=None,
        redis_host=None,
        llm_fallback_model=None,
        demo_tokens_per_second=500,  # a reply takes a few tens of milliseconds: the turns overlap
    )
    async with open_graphs(settings) as service:
        runnable = ChatRunnable(lambda: service.chat, batch_max_concurrency=5)
        config: Any = {"configurable": {"session_id": "s1", "principal": "p"}}
        await asyncio.gather(*(runnable.ainvoke({"question": f"q{i}"}, config) for i in range(5)))
        state = await service.chat.graph.aget_state({"configurable": {"thread_id": "p:s1"}})
    asked = [m.content for m in state.values["history"] if m.type == "human"]
    assert sorted(asked) == [f"q{i}" for i in range(5)]
