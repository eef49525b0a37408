"""Requests whose headers add up to more than `MAX_HEADER_BYTES` get 431 `headers_too_large`.

uvicorn's default HTTP parser (httptools) sets no bound of its own on header size: a 1 MB
`Authorization` or session header would be hashed, logged around and held per request."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from graphs.errors import HeadersTooLarge
from middleware.error_responses import send_error


class HeaderLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            size = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
            if size > self.max_bytes:
                message = f"The request headers are larger than MAX_HEADER_BYTES={self.max_bytes}."
                await send_error(scope, receive, send, HeadersTooLarge(message))
                return
        await self.app(scope, receive, send)
