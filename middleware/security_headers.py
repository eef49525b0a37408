"""Standard security headers on every response, built with the `secure` library.

API answers (JSON, server-sent events) get a Content-Security-Policy that allows nothing at
all; HTML pages (the playground, `/docs`) only forbid framing, since they run their own
scripts and styles. Headers a route set itself are kept.
"""

from __future__ import annotations

import secure
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def header_set(csp: secure.ContentSecurityPolicy) -> list[tuple[str, str]]:
    policy = secure.Secure(
        csp=csp,
        hsts=secure.StrictTransportSecurity().max_age(31_536_000).include_subdomains(),
        referrer=secure.ReferrerPolicy().no_referrer(),
        xcto=secure.XContentTypeOptions().nosniff(),
        xfo=secure.XFrameOptions().deny(),
        coop=secure.CrossOriginOpenerPolicy().same_origin(),
        permissions=secure.PermissionsPolicy().geolocation().microphone().camera(),
    )
    return list(policy.headers.items())


API_HEADERS = header_set(
    secure.ContentSecurityPolicy().default_src("'none'").frame_ancestors("'none'")
)
PAGE_HEADERS = header_set(secure.ContentSecurityPolicy().frame_ancestors("'none'"))


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                page = headers.get("content-type", "").startswith("text/html")
                for name, value in PAGE_HEADERS if page else API_HEADERS:
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
