"""Tell the work of a request when its client has gone, so the upstream call stops at once.

Neither path stops it by itself: uvicorn does not cancel a plain (invoke) handler when the
client disconnects, and on a dropped stream sse-starlette cancels only its own sending task, so
the LangGraph run behind LangServe's abandoned generator goes on to the end (measured: the
upstream streamed every token). Once a request's body has been read, this middleware waits for
`http.disconnect` and fires the request context's `ClientGone` callbacks; a response that completes
first simply stops the wait.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from middleware.request_context import request_context


class DisconnectMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client_gone = request_context(scope).client_gone
        body_read = asyncio.Event()

        async def receive_body() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect":
                client_gone.fire()
            elif not message.get("more_body", False):
                body_read.set()
            return message

        async def watch() -> None:
            await body_read.wait()
            # After the body the only message left is the disconnect (uvicorn hands it to every
            # receiver, so the app's own listeners still get theirs).
            if (await receive())["type"] == "http.disconnect":
                client_gone.fire()

        watcher = asyncio.create_task(watch())
        try:
            await self.app(scope, receive_body, send)
        finally:
            watcher.cancel()
