"""The soak's traffic: a steady rate of mixed requests (turns of sessions that come and go,
streams, batches, cache hits, refusals), each one's latency and status recorded."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

USERS = 100
CACHED_QUESTIONS = [f"What is fact number {i}?" for i in range(5)]
# (kind, weight): what a mixed production minute looks like, refusals included.
MIX = [
    ("session_turn", 35),
    ("stream", 25),
    ("batch", 10),
    ("cache_hit", 15),
    ("too_long", 7),
    ("rate_limited", 8),
]


@dataclass(frozen=True)
class Sample:
    at: float  # seconds since the soak began
    kind: str
    status: int  # 0: no HTTP answer
    seconds: float


@dataclass
class Traffic:
    base_url: str
    rate: float  # requests per second
    started: float = field(default_factory=time.monotonic)
    samples: list[Sample] = field(default_factory=list)
    _count: itertools.count[int] = field(default_factory=itertools.count)

    async def run(self, seconds: float) -> None:
        """Send requests at `rate` per second for `seconds`, without waiting for answers to
        send the next one (an open-loop load, as real clients are)."""
        # Enough connections that the generator never queues requests of its own.
        limits = httpx.Limits(max_connections=1000)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=60, limits=limits) as client:
            pending: set[asyncio.Task[None]] = set()
            interval = 1 / self.rate
            next_at = time.monotonic()
            end = self.started + seconds
            while next_at < end:
                task = asyncio.create_task(self._one(client))
                pending.add(task)
                task.add_done_callback(pending.discard)
                next_at += interval
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            await asyncio.gather(*pending)

    async def _one(self, client: httpx.AsyncClient) -> None:
        number = next(self._count)
        kind = random.choices([k for k, _ in MIX], weights=[w for _, w in MIX])[0]
        path, body, headers = self._request(kind, number)
        began = time.monotonic()
        try:
            response = await client.post(path, json=body, headers=headers)
            status = response.status_code
        except httpx.HTTPError:
            status = 0
        self.samples.append(Sample(began - self.started, kind, status, time.monotonic() - began))

    def _request(self, kind: str, number: int) -> tuple[str, dict[str, Any], dict[str, str]]:
        user = {"X-User-Id": f"soak-{number % USERS}"}
        minute = int((time.monotonic() - self.started) // 60)
        question = {"question": f"Turn {number}: tell me something."}
        if kind == "session_turn":
            # Ten sessions per user each minute: old ones go idle and must expire.
            config = {"configurable": {"session_id": f"m{minute}-{number % 10}"}}
            return "/chat/invoke", {"input": question, "config": config}, user
        if kind == "stream":
            return "/chat/stream", {"input": question}, user
        if kind == "batch":
            return "/chat/batch", {"inputs": [question] * 3}, user
        if kind == "cache_hit":
            # Each user asks the same few questions: after its first asking, a cache hit.
            cached = {"question": random.choice(CACHED_QUESTIONS)}
            return "/chat/invoke", {"input": cached}, user
        if kind == "too_long":
            return "/chat/invoke", {"input": {"question": "word " * 5000}}, user
        return "/chat/invoke", {"input": question}, {"X-User-Id": "soak-greedy"}
