"""The exact LLM cache: a reply stored under a hash of everything that shapes it (the models
and their parameters, the whole prompt with its history, and the scope: the principal, or
everyone under `CACHE_SCOPE=global`), in Redis or in a bounded in-memory LRU.

LangChain's own LLM cache (`set_llm_cache`) is process-global and keyed without the
principal, so one user could be served another's answer; this one puts the scope in the key.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Protocol

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from redis.asyncio import Redis

CachedReply = dict[str, Any]


class ReplyCache(Protocol):
    async def get(self, key: str) -> CachedReply | None: ...

    async def put(self, key: str, reply: CachedReply) -> None: ...


def cache_key(scope: str, models: Sequence[BaseChatModel], prompt: Sequence[BaseMessage]) -> str:
    """A digest of the scope, each model's identity and parameters, and the full prompt."""
    material = {
        "models": [model._get_llm_string() for model in models],
        "prompt": [[message.type, message.content] for message in prompt],
    }
    digest = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()
    # The scope stays readable and, as a hash tag, keeps a principal's entries in one slot.
    return f"{{{scope}}}:{digest}"


class InMemoryReplyCache:
    def __init__(self, ttl_seconds: float, max_entries: int) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, CachedReply]] = OrderedDict()

    async def get(self, key: str) -> CachedReply | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            self._entries.pop(key, None)
            return None
        self._entries.move_to_end(key)
        return entry[1]

    async def put(self, key: str, reply: CachedReply) -> None:
        self._entries[key] = (time.monotonic() + self.ttl_seconds, reply)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


class RedisReplyCache:
    def __init__(self, redis: Redis, prefix: str, ttl_seconds: int) -> None:
        self._redis = redis
        self._prefix = f"{prefix}cache:"
        self._ttl = ttl_seconds

    async def get(self, key: str) -> CachedReply | None:
        value = await self._redis.get(self._prefix + key)
        return None if value is None else dict(json.loads(value))

    async def put(self, key: str, reply: CachedReply) -> None:
        await self._redis.set(self._prefix + key, json.dumps(reply), ex=self._ttl)
