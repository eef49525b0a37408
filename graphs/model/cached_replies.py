"""Cached replies around graphgate's model: the lookup of a plain-text call (tool and
structured calls are not cached), a reply stored once it is whole, and a cached reply replayed
word by word like a fresh one. A failing cache (Redis, or a remote embeddings model) means the
call is answered fresh: the turn goes on without it."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessageChunk, BaseMessage

from graphs.cache.reply_cache import CacheLookup, cache_lookup
from graphs.metrics import CACHE
from graphs.model.provider_calls import TOOL_KWARGS, upstream_errors
from graphs.model.turn import NO_USAGE
from graphs.route_services import RouteServices
from graphs.store.redis_client import REDIS_FAILURES

logger = logging.getLogger(__name__)

# The provider's words for why a reply ended (OpenAI's, then Anthropic's): a cached reply keeps
# them.
REPLY_ENDINGS = frozenset({"finish_reason", "stop_reason", "stop_sequence"})
# Not a principal name (':' is not allowed in one), so no principal shares the global scope.
GLOBAL_SCOPE = ":global"


def cache_errors() -> tuple[type[Exception], ...]:
    """What a cache lookup or store may fail with; the turn goes on without the cache."""
    return (*REDIS_FAILURES, *upstream_errors())


class CachedReplies:
    """The route's reply cache as graphgate's model uses it."""

    def __init__(self, services: RouteServices) -> None:
        self.services = services

    def lookup(
        self, principal: str, messages: Sequence[BaseMessage], kwargs: dict[str, Any]
    ) -> CacheLookup | None:
        """The lookup of a plain-text call, in the principal's scope (or everyone's, under
        `CACHE_SCOPE=global`); none for tool and structured calls."""
        if self.services.cache is None or any(
            k in kwargs for k in (*TOOL_KWARGS, "response_format")
        ):
            return None
        settings = self.services.settings
        scope = principal if settings.cache_scope == "principal" else GLOBAL_SCOPE
        models = [model for _, model in self.services.models]
        return cache_lookup(scope, models, messages, kwargs)

    async def get(self, lookup: CacheLookup | None) -> dict[str, Any] | None:
        """The cached reply, if any."""
        if lookup is None or self.services.cache is None:
            return None
        cached = None
        try:
            cached = await self.services.cache.get(lookup)
        except cache_errors() as exc:
            logger.warning("cache lookup failed (%s); answering fresh", type(exc).__name__)
        CACHE.labels("miss" if cached is None else "hit").inc()
        return cached

    async def store(self, lookup: CacheLookup, reply: AIMessageChunk, model: str) -> None:
        """Keep a whole text reply, with why it ended ("length", "content_filter", ...)."""
        if (
            self.services.cache is None
            or reply.tool_call_chunks
            or not isinstance(reply.content, str)
        ):
            return
        ending = {k: v for k, v in reply.response_metadata.items() if k in REPLY_ENDINGS}
        entry = {"content": reply.content, "model": model, "response_metadata": ending}
        try:
            await self.services.cache.put(lookup, entry)
        except cache_errors() as exc:
            logger.warning("cache store failed (%s)", type(exc).__name__)


def replay(cached: dict[str, Any]) -> list[AIMessageChunk]:
    """A cached reply, word by word like a fresh one, its text byte for byte (whitespace
    included) and its finish reason kept; it used no upstream tokens."""
    reply_id = f"cached-{uuid.uuid4()}"
    words = re.findall(r"\s*\S+|\s+", str(cached["content"]))
    chunks = [AIMessageChunk(content=word, id=reply_id) for word in words]
    final = AIMessageChunk(
        content="",
        id=reply_id,
        usage_metadata=dict(NO_USAGE),
        response_metadata=dict(cached.get("response_metadata") or {}),
    )
    return [*chunks, final]
