"""What every worker of every pod is doing now, for `/admin/live`.

Each worker reports, every `LIVE_REPORT_SECONDS`, its requests in flight, open streams and
model-call slots in use (the Prometheus gauges it keeps anyway) and the errors it answered since
its last report, by code: to Redis, where any worker answering `/admin/live` reads every
worker's, or (embedded, one process) to memory. The report also writes the worker's unwritten
usage sums for the console (`graphs/limits/usage_overview.py`), so an idle worker's are not
left behind. Nothing is written on a request's path: a
report is one round trip per worker per interval, whatever the traffic. A worker that stops
reporting (killed) drops out after three intervals.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Protocol

from prometheus_client import Gauge

from graphs.metrics import IN_FLIGHT, OPEN_STREAMS, REFUSALS
from graphs.store.keys import RedisKeys
from graphs.store.redis_client import REDIS_FAILURES, RedisClient

logger = logging.getLogger(__name__)

STALE_AFTER_REPORTS = 3


@dataclass(frozen=True)
class WorkerState:
    worker: str
    in_flight: int
    open_streams: int
    model_calls: int  # this worker's model-call slots in use (of `MAX_CONCURRENCY`)
    at: float


def gauge(metric: Gauge) -> int:
    return int(sum(sample.value for family in metric.collect() for sample in family.samples))


def refusals_so_far() -> Counter[str]:
    """The errors this process has answered since it started, by code."""
    return Counter(
        {
            sample.labels["code"]: int(sample.value)
            for family in REFUSALS.collect()
            for sample in family.samples
            if sample.name.endswith("_total")
        }
    )


def minute_of(moment: float) -> int:
    return int(moment // 60)


class LiveBoard(Protocol):
    async def report(self, state: WorkerState, errors: Counter[str]) -> None:
        """Post a worker's state and the errors it answered since its last report."""

    async def workers(self, fresh_since: float) -> list[WorkerState]:
        """The workers that reported since `fresh_since`."""

    async def errors(self, minutes: range) -> Counter[str]:
        """The errors answered in `minutes` (since the epoch), by code."""

    async def leave(self, worker: str) -> None: ...


class InMemoryLiveBoard:
    def __init__(self) -> None:
        self._workers: dict[str, WorkerState] = {}
        self._errors: dict[int, Counter[str]] = defaultdict(Counter)

    async def report(self, state: WorkerState, errors: Counter[str]) -> None:
        self._workers[state.worker] = state
        self._errors[minute_of(state.at)].update(errors)
        for minute in [m for m in self._errors if m < minute_of(state.at) - 24 * 60]:
            del self._errors[minute]

    async def workers(self, fresh_since: float) -> list[WorkerState]:
        return [state for state in self._workers.values() if state.at >= fresh_since]

    async def errors(self, minutes: range) -> Counter[str]:
        total: Counter[str] = Counter()
        for minute in minutes:
            total.update(self._errors.get(minute, Counter()))
        return total

    async def leave(self, worker: str) -> None:
        self._workers.pop(worker, None)


class RedisLiveBoard:
    """One hash of worker reports, and one hash of error counts per minute, each living as long
    as the longest window read (`retention_seconds`) past its last write; one hash tag, so one
    slot on a Cluster."""

    def __init__(self, redis: RedisClient, keys: RedisKeys, retention_seconds: int) -> None:
        self._redis, self._keys, self._retention = redis, keys, retention_seconds

    async def report(self, state: WorkerState, errors: Counter[str]) -> None:
        errors_key = self._keys.live_errors(minute_of(state.at))
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(self._keys.live_workers(), state.worker, json.dumps(asdict(state)))
            # Gone with the last worker: a service scaled to zero leaves nothing behind.
            pipe.expire(self._keys.live_workers(), self._retention)
            for code, count in errors.items():
                pipe.hincrby(errors_key, code, count)
            if errors:
                pipe.expire(errors_key, self._retention)
            await pipe.execute()

    async def workers(self, fresh_since: float) -> list[WorkerState]:
        reports = await self._redis.hgetall(self._keys.live_workers())
        states = [WorkerState(**json.loads(value)) for value in reports.values()]
        gone = [state.worker for state in states if state.at < fresh_since]
        if gone:
            await self._redis.hdel(self._keys.live_workers(), *gone)
        return [state for state in states if state.at >= fresh_since]

    async def errors(self, minutes: range) -> Counter[str]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for minute in minutes:
                pipe.hgetall(self._keys.live_errors(minute))
            counts = await pipe.execute()
        total: Counter[str] = Counter()
        for minute_counts in counts:
            total.update({code.decode(): int(n) for code, n in minute_counts.items()})
        return total

    async def leave(self, worker: str) -> None:
        await self._redis.hdel(self._keys.live_workers(), worker)


class Reporter:
    """This worker's reports: its state now, and its errors not yet reported."""

    def __init__(
        self,
        board: LiveBoard,
        model_calls: Callable[[], int],
        flush_usage: Callable[[], Awaitable[None]],
    ) -> None:
        self.board = board
        self.flush_usage = flush_usage  # the console's usage sums, written with each report
        # Named when the worker serves (after gunicorn's fork, even with --preload).
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self._model_calls = model_calls
        # Counted from here: the counters are the process's, which may hold an app before this.
        self._reported = refusals_so_far()

    def state(self) -> WorkerState:
        in_flight, streams = gauge(IN_FLIGHT), gauge(OPEN_STREAMS)
        return WorkerState(self.worker, in_flight, streams, self._model_calls(), time.time())

    def unreported_errors(self) -> Counter[str]:
        return refusals_so_far() - self._reported

    async def report(self) -> None:
        errors = refusals_so_far()
        await self.board.report(self.state(), errors - self._reported)
        self._reported = errors
        await self.flush_usage()


@contextlib.asynccontextmanager
async def reporting(reporter: Reporter, interval: float) -> AsyncIterator[None]:
    """Report every `interval` while the block runs; a failed report is logged and the errors
    it held go with the next one."""

    async def every_interval() -> None:
        while True:
            try:
                await reporter.report()
            except REDIS_FAILURES as exc:
                logger.warning("live report failed: %s", type(exc).__name__)
            await asyncio.sleep(interval)

    task = asyncio.create_task(every_interval())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(*REDIS_FAILURES):
            await reporter.flush_usage()
            await reporter.board.leave(reporter.worker)


def live_reporter(
    redis: RedisClient | None,
    keys: RedisKeys,
    error_minutes: int,
    model_calls: Callable[[], int],
    flush_usage: Callable[[], Awaitable[None]],
) -> Reporter:
    """This worker's reporter, to Redis when there is one, else to memory."""
    if redis is None:
        return Reporter(InMemoryLiveBoard(), model_calls, flush_usage)
    board = RedisLiveBoard(redis, keys, (error_minutes + 1) * 60)
    return Reporter(board, model_calls, flush_usage)
