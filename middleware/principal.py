"""The principal a request acts for.

Until authentication exists (a later issue) every caller is `anonymous`, except that outside
production the `X-User-Id` header names the principal, which lets tests and local users keep
separate sessions and limits. In production that header is ignored: a client could forge it.
"""

from __future__ import annotations

import re

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from graphs.nodes.limit import ANONYMOUS
from middleware.context import PRINCIPAL, scope_state
from middleware.errors import error_response

IDENTIFIER = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


class PrincipalMiddleware:
    def __init__(self, app: ASGIApp, *, trust_user_header: bool) -> None:
        self.app = app
        self.trust_user_header = trust_user_header

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        principal = ANONYMOUS
        user = Headers(scope=scope).get("x-user-id")
        if self.trust_user_header and user is not None:
            if not IDENTIFIER.match(user):
                message = "X-User-Id must be 1-128 letters, digits, '.', '_' or '-'."
                await error_response(scope, 400, "invalid_input", message)(scope, receive, send)
                return
            principal = user
        scope_state(scope)[PRINCIPAL] = principal
        await self.app(scope, receive, send)
