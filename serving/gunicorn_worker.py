"""The gunicorn worker class (`gunicorn.conf.py`): uvicorn's, with a graceful drain on SIGTERM.

Plain uvicorn closes its listening socket at once on SIGTERM, and sse-starlette ends every open
stream; Kubernetes would see refused connections and clients half-finished replies. Here
SIGTERM only starts the drain (`middleware/drain.py`); the server shuts down once nothing is in
flight or the graceful timeout is near, whichever comes first.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from types import FrameType

from gunicorn.arbiter import Arbiter
from uvicorn.server import Server
from uvicorn_worker import UvicornWorker

from middleware.drain import DRAIN

logger = logging.getLogger(__name__)
# Leave the master this long, before its own graceful timeout, to see the worker exit cleanly.
EXIT_MARGIN_SECONDS = 1.0


class DrainingServer(Server):
    def __init__(self, *args: object, drain_timeout: float, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.drain_timeout = drain_timeout
        self._exit: asyncio.Future[None] | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig != signal.SIGTERM or DRAIN.draining:
            super().handle_exit(sig, frame)
            return
        DRAIN.start()
        logger.info("SIGTERM: draining %d request(s) in flight", DRAIN.in_flight)
        asyncio.get_event_loop().call_soon_threadsafe(self._schedule_exit, sig, frame)

    def _schedule_exit(self, sig: int, frame: FrameType | None) -> None:
        self._exit = asyncio.ensure_future(self._exit_when_idle(sig, frame))

    async def _exit_when_idle(self, sig: int, frame: FrameType | None) -> None:
        try:
            await asyncio.wait_for(DRAIN.wait_idle(), self.drain_timeout)
        except TimeoutError:
            logger.warning("drain timeout: %d request(s) still in flight", DRAIN.in_flight)
        super().handle_exit(sig, frame)


class GracefulUvicornWorker(UvicornWorker):  # type: ignore[misc]
    async def _serve(self) -> None:
        self.config.app = self.wsgi
        timeout = max(0.0, self.cfg.graceful_timeout - EXIT_MARGIN_SECONDS)
        server = DrainingServer(config=self.config, drain_timeout=timeout)
        self._install_sigquit_handler()
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)
