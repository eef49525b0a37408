"""The semantic LLM cache: a question close enough in meaning to one answered before, in the same
scope and context, gets that answer.

Closeness is the cosine distance between the questions' embeddings (0 = same direction, 2 =
opposite); a cached answer is served when the distance is at most the threshold. Each embeddings
model has its own scale, so the threshold is the model's: `SEMANTIC_CACHE_THRESHOLD`, or the
default measured for that model (`bench/semantic_threshold.py` measures where paraphrases and
different questions fall). In memory, a bounded list searched exhaustively; in Redis a RedisVL
`SemanticCache` (`graphs/cache/redis_semantic_cache.py`, imported only when configured).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict

from langchain_core.embeddings import Embeddings

from graphs.cache.embeddings import LOCAL_MINILM
from graphs.cache.reply_cache import CachedReply, CacheLookup
from graphs.settings import Settings

Vector = list[float]

# Defaults measured with `make bench-semantic`, only for models that run here: all-MiniLM-L6-v2
# put paraphrases at 0.014-0.145 and different questions of the same shape from 0.337.
CALIBRATED_THRESHOLDS: dict[str, float] = {LOCAL_MINILM: 0.2}


def semantic_threshold(settings: Settings) -> float:
    """`SEMANTIC_CACHE_THRESHOLD`, else the default measured for `EMBEDDINGS_MODEL`; raises
    ValueError for a model never measured, whose distances could serve one question's answer
    for another."""
    if settings.semantic_cache_threshold is not None:
        return settings.semantic_cache_threshold
    calibrated = CALIBRATED_THRESHOLDS.get(settings.embeddings_model)
    if calibrated is None:
        raise ValueError(
            f"CACHE_MODE=semantic with EMBEDDINGS_MODEL={settings.embeddings_model}, a model "
            "with no measured threshold: set SEMANTIC_CACHE_THRESHOLD (measure it with "
            "`EMBEDDINGS_MODEL=... make bench-semantic`)."
        )
    return calibrated


def cosine_distance(a: Vector, b: Vector) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norms = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return 1.0 - dot / norms if norms else 1.0


class QuestionVectors:
    """Embeddings of recent questions: a miss's `put` reuses the vector its `get` computed."""

    def __init__(self, embeddings: Embeddings, remembered: int = 256) -> None:
        self.embeddings = embeddings
        self._remembered = remembered
        self._vectors: OrderedDict[str, Vector] = OrderedDict()

    async def of(self, question: str) -> Vector:
        vector = self._vectors.get(question)
        if vector is None:
            vector = await self.embeddings.aembed_query(question)
            self._vectors[question] = vector
            if len(self._vectors) > self._remembered:
                self._vectors.popitem(last=False)
        self._vectors.move_to_end(question)
        return vector


Entry = tuple[Vector, float, CachedReply]  # question vector, expiry, reply


class InMemorySemanticCache:
    """Entries grouped by scope and context, so a lookup compares only with its own group;
    the oldest entry overall goes first past `max_entries`."""

    def __init__(
        self, embeddings: Embeddings, threshold: float, ttl_seconds: float, max_entries: int
    ) -> None:
        self._vectors = QuestionVectors(embeddings)
        self._threshold = threshold
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._groups: dict[tuple[str, str], dict[int, Entry]] = {}
        self._age: OrderedDict[int, tuple[str, str]] = OrderedDict()
        self._next_id = 0

    async def prepare(self) -> None:
        await self._vectors.of("warm up")

    async def get(self, lookup: CacheLookup) -> CachedReply | None:
        group = self._groups.get((lookup.scope, lookup.context), {})
        if not group:
            return None
        vector = await self._vectors.of(lookup.question)
        now = time.monotonic()
        best: tuple[float, CachedReply] | None = None
        for entry_id, (stored, expires, reply) in list(group.items()):
            if expires < now:
                self._forget(entry_id)
                continue
            distance = cosine_distance(vector, stored)
            if distance <= self._threshold and (best is None or distance < best[0]):
                best = (distance, reply)
        return None if best is None else best[1]

    async def put(self, lookup: CacheLookup, reply: CachedReply) -> None:
        vector = await self._vectors.of(lookup.question)
        key = (lookup.scope, lookup.context)
        entry_id, self._next_id = self._next_id, self._next_id + 1
        self._groups.setdefault(key, {})[entry_id] = (vector, time.monotonic() + self._ttl, reply)
        self._age[entry_id] = key
        while len(self._age) > self._max_entries:
            self._forget(next(iter(self._age)))

    def _forget(self, entry_id: int) -> None:
        key = self._age.pop(entry_id)
        group = self._groups[key]
        del group[entry_id]
        if not group:
            del self._groups[key]
