"""Counting upstream HTTP attempts, so that the retries made inside a provider SDK (which
LangChain's callbacks never see) reach the reply's metadata, the access log and the metrics."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import httpx
import httpx2
from opentelemetry.trace import Span

from graphs.telemetry.model_spans import attempted


@dataclass
class Attempts:
    """The HTTP requests one model call made, noted on its span when it is traced."""

    made: int = 0
    span: Span | None = None

    @property
    def retries(self) -> int:
        return max(0, self.made - 1)


_ATTEMPTS: ContextVar[Attempts | None] = ContextVar("graphgate_attempts", default=None)


@contextmanager
def counting_attempts(span: Span | None = None) -> Iterator[Attempts]:
    """Within the block, each HTTP request of a counting client counts in the `Attempts`."""
    attempts = Attempts(span=span)
    token = _ATTEMPTS.set(attempts)
    try:
        yield attempts
    finally:
        _ATTEMPTS.reset(token)


async def count_attempt(request: httpx.Request | httpx2.Request) -> None:
    """An httpx event hook (openai's client is httpx2, anthropic's httpx): the model call runs
    in the caller's task, so it sees the count."""
    attempts = _ATTEMPTS.get()
    if attempts is not None:
        attempts.made += 1
        attempted(attempts.span, attempts.made)
