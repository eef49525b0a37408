"""The semantic cache in Redis: RedisVL's `SemanticCache` (a vector index) with the scope and
context as tag filters. Its own module, imported only with `CACHE_MODE=semantic` and Redis:
RedisVL is a large import that a server without the semantic cache should not pay for."""

from __future__ import annotations

import asyncio
import hashlib

from langchain_core.embeddings import Embeddings
from redisvl.extensions.cache.llm import SemanticCache
from redisvl.query.filter import Tag
from redisvl.utils.vectorize import CustomTextVectorizer

from graphs.cache.reply_cache import CachedReply, CacheLookup
from graphs.cache.semantic_cache import QuestionVectors


def scope_tag(scope: str) -> str:
    """The scope as a tag value: RediSearch compares tags case-insensitively, so the principal
    `ALICE` would match `alice`'s entries; the hex digest of the scope cannot."""
    return hashlib.sha256(scope.encode()).hexdigest()


class RedisSemanticCache:
    """RedisVL's `SemanticCache`, filtered by scope and context tags."""

    def __init__(
        self,
        embeddings: Embeddings,
        *,
        redis_url: str,
        name: str,
        threshold: float,
        ttl_seconds: int,
    ) -> None:
        self._vectors = QuestionVectors(embeddings)
        self._redis_url = redis_url
        self._name = name
        self._threshold = threshold
        self._ttl = ttl_seconds
        self._cache: SemanticCache | None = None

    async def prepare(self) -> None:
        """Load the embeddings model and create the index (both block, so off the loop)."""
        self._cache = await asyncio.to_thread(self._open)

    def _open(self) -> SemanticCache:
        embeddings = self._vectors.embeddings
        vectorizer = CustomTextVectorizer(
            embed=embeddings.embed_query, aembed=embeddings.aembed_query
        )
        return SemanticCache(
            name=self._name,
            distance_threshold=self._threshold,
            ttl=self._ttl,
            vectorizer=vectorizer,
            filterable_fields=[
                {"name": "scope", "type": "tag"},
                {"name": "context", "type": "tag"},
            ],
            redis_url=self._redis_url,
        )

    def _opened(self) -> SemanticCache:
        if self._cache is None:
            raise RuntimeError("the semantic cache was used before prepare()")
        return self._cache

    async def get(self, lookup: CacheLookup) -> CachedReply | None:
        hits = await self._opened().acheck(
            vector=await self._vectors.of(lookup.question),
            filter_expression=(Tag("scope") == scope_tag(lookup.scope))
            & (Tag("context") == lookup.context),
            return_fields=["response", "metadata"],
        )
        if not hits:
            return None
        metadata = hits[0].get("metadata") or {}
        return {"content": hits[0]["response"], "model": metadata.get("model", "")}

    async def put(self, lookup: CacheLookup, reply: CachedReply) -> None:
        await self._opened().astore(
            prompt=lookup.question,
            response=str(reply["content"]),
            vector=await self._vectors.of(lookup.question),
            metadata={"model": reply["model"]},
            filters={"scope": scope_tag(lookup.scope), "context": lookup.context},
        )
