"""Authentication: every request but the open ones carries a credential, and the principal it
names goes into the request context for admission, the sessions and the access line.

Open: health probes (a load balancer has no key), `/metrics` (its own `METRICS_TOKEN`), CORS
preflights (browsers send them without credentials), the console's static page and, when
enabled, the API docs and the playground's static page. The authenticator is built in the
app's lifespan, where the Redis client opens; until then nothing is served.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from auth.authenticator import Authenticator, bears_token
from graphs.errors import GraphgateError, Unauthenticated
from middleware.error_responses import send_error
from middleware.request_context import request_context

METRICS_PATH = "/metrics"
HEALTH_PATHS = ("/health/",)
# The console's page and its script: they hold no data; every call they make to `/admin/`
# authenticates, and only an admin's succeeds.
CONSOLE_PATHS = ("/console",)
DOCS_PATHS = ("/docs", "/redoc", "/openapi.json")


def open_paths(*, docs: bool, route_paths: tuple[str, ...]) -> tuple[str, ...]:
    """Paths served without a credential, with what lies below them: health, and the docs and
    each route's playground page when they are enabled (the playground's own calls to the
    route still authenticate)."""
    if not docs:
        return HEALTH_PATHS + CONSOLE_PATHS
    playgrounds = tuple(f"{path}/playground" for path in route_paths)
    return HEALTH_PATHS + CONSOLE_PATHS + DOCS_PATHS + playgrounds


def is_open(path: str, open_paths: tuple[str, ...]) -> bool:
    """Whether `path` is one of `open_paths` or below one: `/docs` opens `/docs/x`, never
    `/docs-qa`."""
    return any(
        path == prefix or path.startswith(prefix if prefix.endswith("/") else f"{prefix}/")
        for prefix in open_paths
    )


class AuthMiddleware:
    def __init__(
        self, app: ASGIApp, *, metrics_token: str | None, open_paths: tuple[str, ...]
    ) -> None:
        self.app = app
        self.metrics_token = metrics_token
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers = Headers(scope=scope)
        try:
            if path == METRICS_PATH:
                self._check_metrics_token(headers)
            elif not is_open(path, self.open_paths):
                authenticator: Authenticator = scope["app"].state.authenticator
                client = scope.get("client")
                request_context(scope).principal = await authenticator.authenticate(
                    headers, client[0] if client else None
                )
        except GraphgateError as exc:
            await send_error(scope, receive, send, exc)
            return
        await self.app(scope, receive, send)

    def _check_metrics_token(self, headers: Headers) -> None:
        if self.metrics_token is None:
            return
        if not bears_token(headers, self.metrics_token):
            raise Unauthenticated("/metrics needs `Authorization: Bearer <METRICS_TOKEN>`.")
