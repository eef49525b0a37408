"""Liveness (the process answers) and readiness (Redis reachable, with the modules the
configured features need; credentials checkable; not draining).

Readiness answers anyone (a Kubernetes probe carries no credential), so in production it says
ready or not and which check failed in words that name nothing configured (no model, URL or
setting); the details and the configured models go to a caller bearing `METRICS_TOKEN`, and to
every caller outside production.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from auth.authenticator import Authenticator, bears_token
from graphs.route_services import RouteServices
from graphs.service import GraphService
from graphs.settings import Settings
from graphs.store.redis_client import (
    REDIS_FAILURES,
    describe_missing,
    missing_modules,
    required_modules,
)
from middleware.drain import DRAIN

router = APIRouter(prefix="/health", tags=["health"])


@dataclass(frozen=True)
class Check:
    ok: bool
    summary: str  # for anyone
    detail: str  # for the operator


OK = Check(True, "ok", "ok")


@router.get("/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


async def redis_check(service: GraphService) -> Check:
    if service.redis is None:
        return Check(True, "ok", "embedded: in-memory state, single process")
    try:
        await service.redis.ping()
        needed = required_modules(service.chat.services.settings)
        missing = await missing_modules(service.redis, needed)
    except REDIS_FAILURES as exc:
        return Check(False, "unreachable", f"unreachable: {type(exc).__name__}")
    if missing:
        return Check(False, "missing a module", f"missing {describe_missing(missing)}")
    return OK


async def auth_check(authenticator: Authenticator) -> Check:
    problem = await authenticator.problem()
    return OK if problem is None else Check(False, "credentials cannot be verified", problem)


def model_check(services: RouteServices) -> Check:
    return Check(True, "ok", "demo (offline demo model)" if services.uses_demo_model else "ok")


def shows_details(request: Request, settings: Settings) -> bool:
    """Outside production, anyone; in production, a caller bearing the metrics token."""
    if settings.app_env != "production":
        return True
    token = settings.metrics_token
    return token is not None and bears_token(request.headers, token.get_secret_value())


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    service: GraphService = request.app.state.graphs
    if DRAIN.draining:
        draining = {"status": "draining", "checks": {"draining": "shutting down"}}
        return JSONResponse(draining, status_code=503)
    services = service.chat.services
    checks = {
        "redis": await redis_check(service),
        "auth": await auth_check(request.app.state.authenticator),
        "model": model_check(services),
    }
    ok = all(check.ok for check in checks.values())
    body: dict[str, object] = {"status": "ready" if ok else "not ready"}
    if shows_details(request, services.settings):
        body["checks"] = {name: check.detail for name, check in checks.items()}
        body["models"] = [spec.label for spec, _ in services.models]
    else:
        body["checks"] = {name: check.summary for name, check in checks.items()}
    return JSONResponse(body, status_code=200 if ok else 503)
