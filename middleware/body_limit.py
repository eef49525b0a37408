"""Request bodies larger than `MAX_BODY_BYTES` get 413 `payload_too_large`, whether the size
is declared in Content-Length or only found while reading a chunked body. Nothing past the
limit is kept in memory.

A client that is still sending when the server answers and closes sees a reset connection,
not the 413 (it writes before it reads). So the rest of the body is read and dropped, up to
`MAX_DISCARD_BYTES`, before the answer; past that the connection is closed. A client that
asked `Expect: 100-continue` has sent nothing yet and gets the 413 at once.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graphs.errors import PayloadTooLarge
from middleware.error_responses import WatchedSend, send_error


class BodyTooLarge(Exception):
    """Raised from `receive` once the body passes the limit."""


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int, max_discard_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_discard_bytes = max_discard_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            if headers.get("expect", "").lower() != "100-continue":
                await self._discard(receive, 0)
            await self._refuse(scope, receive, send)
            return
        received = 0
        watched = WatchedSend(send)

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise BodyTooLarge
            return message

        try:
            await self.app(scope, counting_receive, watched)
        except BodyTooLarge:
            if watched.started:
                raise
            await self._discard(receive, received)
            await self._refuse(scope, receive, send)

    async def _discard(self, receive: Receive, already: int) -> None:
        """Read and drop the rest of the body, up to `max_discard_bytes` in all."""
        dropped = already
        while dropped <= self.max_discard_bytes:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                return
            dropped += len(message.get("body", b""))

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"The request body is larger than MAX_BODY_BYTES={self.max_bytes}."
        await send_error(scope, receive, send, PayloadTooLarge(message))
