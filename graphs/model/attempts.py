"""Counting upstream HTTP attempts, so that the retries made inside a provider SDK (which
LangChain's callbacks never see) reach the reply's metadata, the access log and the metrics."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import httpx
import httpx2

_ATTEMPTS: ContextVar[list[int] | None] = ContextVar("graphgate_attempts", default=None)


@contextmanager
def counting_attempts(counter: list[int]) -> Iterator[None]:
    """Within the block, each HTTP request of a counting client adds one to `counter[0]`."""
    token = _ATTEMPTS.set(counter)
    try:
        yield
    finally:
        _ATTEMPTS.reset(token)


async def count_attempt(request: httpx.Request | httpx2.Request) -> None:
    """An httpx event hook (openai's client is httpx2, anthropic's httpx): the model call runs
    in the caller's task, so it sees the counter."""
    counter = _ATTEMPTS.get()
    if counter is not None:
        counter[0] += 1
