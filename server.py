"""graphgate's FastAPI app: wiring only. `uvicorn server:app` serves it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import health, metrics, openai_compat, sessions, usage
from api.chat_routes import add_chat_routes
from api.errors import install_error_handlers
from api.log_config import configure_logging
from api.service import open_chat_service
from graphs.runtime.settings import Settings
from middleware.access_log import AccessLogMiddleware
from middleware.body_limit import BodyLimitMiddleware
from middleware.disconnect import DisconnectMiddleware
from middleware.drain import DrainMiddleware
from middleware.metrics import MetricsMiddleware
from middleware.principal import PrincipalMiddleware
from middleware.rate_limit_headers import RateLimitHeadersMiddleware
from middleware.sse_errors import SSEErrorMiddleware
from middleware.trace import TraceIdMiddleware


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_chat_service(settings) as service:
            app.state.chat = service
            yield

    app = FastAPI(title="graphgate", version="0.1.0", lifespan=lifespan)
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(sessions.router)
    app.include_router(usage.router)
    app.include_router(metrics.router)
    app.include_router(openai_compat.router)
    add_chat_routes(app, settings)
    # Starlette runs the last added middleware first: trace id outermost, body limit innermost.
    # Disconnect watches the raw `receive`, outside the principal and body-limit checks.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(PrincipalMiddleware, trust_user_header=settings.trusts_user_header)
    app.add_middleware(DisconnectMiddleware)
    app.add_middleware(SSEErrorMiddleware)
    app.add_middleware(RateLimitHeadersMiddleware)
    app.add_middleware(DrainMiddleware)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(TraceIdMiddleware)
    return app


app = create_app()
