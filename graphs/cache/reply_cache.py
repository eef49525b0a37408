"""The LLM cache. A lookup names everything that shapes an answer: the scope (the principal,
or everyone under `CACHE_SCOPE=global`), the context (the models with their parameters and the
prompt before the question) and the question. The exact cache matches all three; the semantic
cache (`graphs/cache/semantic_cache.py`) matches scope and context exactly and the question by
meaning.

LangChain's own LLM cache (`set_llm_cache`) is process-global and keyed without the principal,
so one user could be served another's answer; here the scope is part of every lookup.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage

from graphs.store.keys import RedisKeys
from graphs.store.redis_client import RedisClient

CachedReply = dict[str, Any]


@dataclass(frozen=True)
class CacheLookup:
    scope: str
    context: str
    question: str

    @property
    def digest(self) -> str:
        """What the context and question hash to: within a scope, the exact-match key."""
        return hashlib.sha256(f"{self.context}\n{self.question}".encode()).hexdigest()


class ReplyCache(Protocol):
    async def prepare(self) -> None: ...

    async def get(self, lookup: CacheLookup) -> CachedReply | None: ...

    async def put(self, lookup: CacheLookup, reply: CachedReply) -> None: ...


def cache_lookup(
    scope: str,
    models: Sequence[BaseChatModel],
    prompt: Sequence[BaseMessage],
    params: Mapping[str, Any],
) -> CacheLookup:
    """The lookup for `prompt` (system and history, then the question last) sent to `models`
    with the call's parameters. The context holds everything the model sees but the last
    message's text, the question, which the semantic cache matches by meaning."""
    *before, last = prompt
    context = {
        "models": [model._get_llm_string() for model in models],
        "params": params,
        "before": [seen_by_model(message) for message in before],
        "last": {**seen_by_model(last), "content": non_text_parts(last)},
    }
    digest = hashlib.sha256(json.dumps(context, sort_keys=True, default=str).encode()).hexdigest()
    return CacheLookup(scope, digest, last.text)


def seen_by_model(message: BaseMessage) -> dict[str, Any]:
    """What of a message reaches a model: its role, name, every content part, its tool calls
    (ids, names, arguments) or the call it answers."""
    return {
        "type": message.type,
        "name": message.name,
        "content": message.content,
        "tool_calls": getattr(message, "tool_calls", None),
        "tool_call_id": getattr(message, "tool_call_id", None),
        "additional_kwargs": message.additional_kwargs,
    }


def non_text_parts(message: BaseMessage) -> list[Any]:
    """The content parts of a message other than its text (images, files, ...)."""
    if isinstance(message.content, str):
        return []
    return [
        part
        for part in message.content
        if not isinstance(part, str) and not (isinstance(part, dict) and part.get("type") == "text")
    ]


class InMemoryReplyCache:
    """Exact matches in a bounded LRU with a TTL (embedded mode)."""

    def __init__(self, ttl_seconds: float, max_entries: int) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str], tuple[float, CachedReply]] = OrderedDict()

    async def prepare(self) -> None:
        return None

    async def get(self, lookup: CacheLookup) -> CachedReply | None:
        key = (lookup.scope, lookup.digest)
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            self._entries.pop(key, None)
            return None
        self._entries.move_to_end(key)
        return entry[1]

    async def put(self, lookup: CacheLookup, reply: CachedReply) -> None:
        key = (lookup.scope, lookup.digest)
        self._entries[key] = (time.monotonic() + self.ttl_seconds, reply)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


class RedisReplyCache:
    """Exact matches as Redis strings with a TTL."""

    def __init__(self, redis: RedisClient, prefix: str, ttl_seconds: int) -> None:
        self._redis = redis
        self._keys = RedisKeys(prefix)
        self._ttl = ttl_seconds

    async def prepare(self) -> None:
        return None

    async def get(self, lookup: CacheLookup) -> CachedReply | None:
        value = await self._redis.get(self._keys.reply(lookup.scope, lookup.digest))
        return None if value is None else dict(json.loads(value))

    async def put(self, lookup: CacheLookup, reply: CachedReply) -> None:
        await self._redis.set(
            self._keys.reply(lookup.scope, lookup.digest), json.dumps(reply), ex=self._ttl
        )
