"""A session's checkpoint format is versioned: a session stored by the previous format (LangGraph's
msgpack for every value, as graphgate wrote it before `messages/1`) is read and continued, and
its history is written back compact; with `CHECKPOINT_COMPACT_MESSAGES=false` (a rolling
upgrade from an earlier graphgate) it stays in the format every earlier worker reads. The stored
session was written by graphgate at commit 2cebae5: two turns of principal `writer`,
session `s`."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

import pytest
import redis

from graphs.store.keys import RedisKeys
from tests.conftest import REDIS_FLAVOURS
from tests.redis.app_in_process import app_over
from tests.redis_servers import RedisFlavours

PREFIX = "test-format:"
PREVIOUS = Path(__file__).with_name("previous_format_session.json")
HISTORY_FIELD = b"v\x00\x00history"


def restore_previous(store: redis.Redis | redis.RedisCluster, key: str) -> None:
    fields = json.loads(PREVIOUS.read_text())
    store.hset(key, mapping={base64.b64decode(k): base64.b64decode(v) for k, v in fields.items()})


@pytest.mark.parametrize(("compact", "written"), [(True, b"messages/1"), (False, b"msgpack")])
@pytest.mark.parametrize("flavour", REDIS_FLAVOURS)
async def test_a_session_of_the_previous_format_is_read_and_continued(
    redis_flavours: RedisFlavours, flavour: str, compact: bool, written: bytes
) -> None:
    principal = f"reader-{uuid.uuid4().hex[:8]}"
    key = RedisKeys(PREFIX).checkpoint(f"{principal}:s")
    store = redis_flavours.client(flavour, text=False)
    restore_previous(store, key)
    headers = {"X-User-Id": principal}
    turn = {"input": {"question": "And a third?"}, "config": {"configurable": {"session_id": "s"}}}
    async with app_over(
        redis_flavours.settings(flavour),
        redis_prefix=PREFIX,
        checkpoint_compact_messages=compact,
    ) as client:
        before = (await client.get("/chat/sessions/s", headers=headers)).json()
        reply = await client.post("/chat/invoke", json=turn, headers=headers)
        after = (await client.get("/chat/sessions/s", headers=headers)).json()

    asked = ["What is a checkpoint?", "And a thread?"]
    assert [m["content"] for m in before["messages"] if m["type"] == "human"] == asked
    assert reply.status_code == 200, reply.text
    assert [m["content"] for m in after["messages"] if m["type"] == "human"] == [
        *asked,
        "And a third?",
    ]
    assert after["messages"][:4] == before["messages"]
    stored = store.hget(key, HISTORY_FIELD)
    assert isinstance(stored, bytes)
    assert stored.startswith(written + b"\x00")
