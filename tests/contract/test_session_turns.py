"""The session lock holds for a run that does not come through HTTP: the runnable takes the
lock itself, so concurrent turns of one session in one process all land in its history."""

from __future__ import annotations

import asyncio
from typing import Any

from api.chat_runnable import ChatRunnable
from graphs.runtime.settings import Settings
from graphs.service import open_graphs


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
