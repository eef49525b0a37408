"""graphgate's FastAPI app: wiring only. `uvicorn server:app` serves it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig
from starlette.middleware.cors import CORSMiddleware

from api import admin, console, health, metrics_endpoint, openai_compat, usage
from api.admin.live_board import live_reporter, reporting
from api.chat_routes import mount_routes
from api.exception_handlers import install_error_handlers
from api.langgraph import install_langgraph_api
from api.langgraph.run_takeover import taking_over_runs
from api.openapi import install_openapi
from auth.authenticator import build_authenticator
from graphs.clock import SYSTEM_CLOCK, Clock
from graphs.routes import load_route_specs
from graphs.service import open_graphs
from graphs.settings import Settings
from graphs.store.keys import RedisKeys
from middleware.access_log import AccessLogMiddleware
from middleware.auth import AuthMiddleware, open_paths
from middleware.body_limit import BodyLimitMiddleware
from middleware.disconnect import DisconnectMiddleware
from middleware.drain import DrainMiddleware
from middleware.header_limit import HeaderLimitMiddleware
from middleware.json_body import JSONBodyMiddleware
from middleware.rate_limit_headers import RateLimitHeadersMiddleware
from middleware.request_metrics import MetricsMiddleware
from middleware.security_headers import SecurityHeadersMiddleware
from middleware.sse_errors import SSEErrorMiddleware
from middleware.trace import TraceIdMiddleware
from middleware.unexpected_errors import UnexpectedErrorMiddleware
from serving.log_config import configure_logging
from serving.startup_checks import refuse_unsafe_start
from serving.startup_heap import frozen_startup_heap
from serving.telemetry import telemetry

# FastAPI's own OpenTelemetry: the request's server span (continuing an incoming `traceparent`)
# and the HTTP metrics, once `serving/telemetry.py` installs providers; nothing before. Not its
# spans of each dependency and serialisation, nor its exception logs (which quote messages):
# structlog writes ours. Probes and `/metrics` make no traces.
REQUEST_TELEMETRY: TelemetryConfig = {
    "logs": False,
    "operation_spans": False,
    "auto_configure": False,
    "exclude": lambda scope: scope["path"].startswith(("/health/", "/metrics")),
}
CORS_HEADERS = ["Authorization", "Content-Type", "X-API-Key", "X-Session-Id", "X-Request-Id"]
# Content-Location and Location carry a LangGraph API run's id to a browser's client.
EXPOSED_HEADERS = [
    "X-Trace-Id",
    "X-RateLimit-Limit",
    "X-RateLimit-Remaining",
    "Retry-After",
    "Content-Location",
    "Location",
]


def create_app(settings: Settings | None = None, *, clock: Clock = SYSTEM_CLOCK) -> FastAPI:
    """The app for `settings` (default: the environment's); `clock`, for tests, is the time
    the budgets and windows read."""
    settings = settings or Settings()
    configure_logging(settings)
    refuse_unsafe_start(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with telemetry():
            async with serving(app, settings, clock):
                yield

    docs = settings.playground_enabled
    app = FastAPI(
        title="graphgate",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        telemetry=REQUEST_TELEMETRY,
    )
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(usage.router)
    app.include_router(metrics_endpoint.metrics_router(settings))
    app.include_router(openai_compat.router)
    install_langgraph_api(app)
    specs = load_route_specs(settings)
    mount_routes(app, settings, specs)
    # Last: the operator's routes are rare, and Starlette tries routes in order.
    app.include_router(admin.router)
    app.include_router(console.router)
    install_openapi(app)
    add_middleware(app, settings, tuple(spec.path for spec in specs if spec.path))
    return app


@asynccontextmanager
async def serving(app: FastAPI, settings: Settings, clock: Clock) -> AsyncIterator[None]:
    """What the app holds while it serves: the graphs and their stores, the authenticator, the
    live reports, the background runs it takes over, the start-up heap frozen."""
    async with open_graphs(settings, clock=clock) as service:
        app.state.graphs = service
        app.state.authenticator = build_authenticator(settings, service.redis)
        services = service.chat.services
        app.state.live = live_reporter(
            service.redis,
            RedisKeys(settings.redis_prefix),
            settings.admin_error_minutes,
            lambda: services.slots.held,
            services.usage.overview.flush,
        )
        try:
            async with (
                taking_over_runs(app),
                reporting(app.state.live, settings.live_report_seconds),
            ):
                with frozen_startup_heap(settings.gc_gen0_threshold):
                    yield
        finally:
            await app.state.authenticator.aclose()


def add_middleware(app: FastAPI, settings: Settings, route_paths: tuple[str, ...]) -> None:
    """Starlette runs the last added middleware first: the trace id outermost, the JSON body
    innermost. Disconnect watches the raw `receive`, outside the body checks."""
    app.add_middleware(JSONBodyMiddleware, max_depth=settings.max_json_depth)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        max_discard_bytes=settings.max_discard_bytes,
    )
    app.add_middleware(DisconnectMiddleware)
    app.add_middleware(SSEErrorMiddleware)
    app.add_middleware(RateLimitHeadersMiddleware)
    metrics_token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    app.add_middleware(
        AuthMiddleware,
        metrics_token=metrics_token,
        open_paths=open_paths(docs=settings.playground_enabled, route_paths=route_paths),
    )
    app.add_middleware(HeaderLimitMiddleware, max_bytes=settings.max_header_bytes)
    app.add_middleware(DrainMiddleware)
    app.add_middleware(UnexpectedErrorMiddleware)
    if settings.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origin_list,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=CORS_HEADERS,
            expose_headers=EXPOSED_HEADERS,
        )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(TraceIdMiddleware)


app = create_app()
