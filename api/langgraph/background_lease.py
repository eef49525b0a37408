"""A background run's lease (`graphs/memory/run_leases.py`), held by the worker that runs it:
taken at admission, before the run is acknowledged, renewed every third of `RUN_LEASE` while
it runs, given up when it ends. A worker that finds its lease claimed by another (it paused
longer than the lease) stops its copy of the run and leaves the outcome to the one that took
it over."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable

from graphs.memory.run_leases import RunLeases
from graphs.store.redis_client import REDIS_FAILURES

logger = logging.getLogger("graphgate")


def worker_id() -> str:
    """This worker, as a lease names its owner (read when asked: gunicorn forks workers)."""
    return f"{socket.gethostname()}:{os.getpid()}"


class BackgroundLease:
    def __init__(self, leases: RunLeases, principal: str, run_id: str, every: float) -> None:
        self._leases = leases
        self.principal = principal
        self._run_id = run_id
        self._every = every
        self._owner = worker_id()
        self._renewer: asyncio.Task[None] | None = None
        # Another worker runs it now: this one's copy must not record an outcome.
        self.lost = False

    def keep(self, on_lost: Callable[[], object]) -> None:
        """Renew the lease from now (instead of any earlier renewal); `on_lost` is called if
        another worker claims it."""
        self.stop_renewing()
        self._renewer = asyncio.create_task(self._renew(on_lost))

    def stop_renewing(self) -> None:
        """Let the lease lapse: another worker (or this one) claims the run once it has."""
        if self._renewer is not None:
            self._renewer.cancel()

    async def _renew(self, on_lost: Callable[[], object]) -> None:
        while True:
            await asyncio.sleep(self._every)
            try:
                kept = await self._leases.renew(self.principal, self._run_id, self._owner)
            except REDIS_FAILURES as exc:  # try again next time; the lease is the bound
                logger.warning("renewing a background run's lease failed: %s", type(exc).__name__)
                continue
            if not kept:
                logger.warning("a background run's lease was claimed by another worker")
                self.lost = True
                on_lost()
                return

    async def hand_back(self) -> None:
        """Stop owning the run without ending it (a worker that stops): another takes it."""
        self.stop_renewing()
        self.lost = True
        with contextlib.suppress(*REDIS_FAILURES):
            await self._leases.hand_back(self.principal, self._run_id, self._owner)

    async def end(self) -> None:
        """The run has ended: the lease goes (unless another worker holds it now)."""
        self.stop_renewing()
        if self.lost:
            return
        with contextlib.suppress(*REDIS_FAILURES):
            await asyncio.shield(self._leases.end(self.principal, self._run_id, self._owner))
