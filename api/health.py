"""Liveness (the process answers) and readiness (Redis reachable, with the modules the
configured features need, credentials checkable, a model configured)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from auth.authenticator import Authenticator
from graphs.runtime.redis_client import (
    REDIS_FAILURES,
    describe_missing,
    missing_modules,
    required_modules,
)
from graphs.service import GraphService
from middleware.drain import DRAIN

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


async def redis_check(service: GraphService) -> tuple[bool, str]:
    if service.redis is None:
        return True, "embedded: in-memory state, single process"
    try:
        await service.redis.ping()
        needed = required_modules(service.chat.runtime.settings)
        missing = await missing_modules(service.redis, needed)
    except REDIS_FAILURES as exc:
        return False, f"unreachable: {type(exc).__name__}"
    if missing:
        return False, f"missing {describe_missing(missing)}"
    return True, "ok"


async def auth_check(authenticator: Authenticator) -> tuple[bool, str]:
    problem = await authenticator.problem()
    return (True, "ok") if problem is None else (False, problem)


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    service: GraphService = request.app.state.graphs
    if DRAIN.draining:
        body = {"status": "draining", "checks": {"draining": "shutting down"}}
        return JSONResponse(body, status_code=503)
    redis_ok, redis_detail = await redis_check(service)
    auth_ok, auth_detail = await auth_check(request.app.state.authenticator)
    ok = redis_ok and auth_ok
    runtime = service.chat.runtime
    models = [spec.label for spec, _ in runtime.models]
    model_detail = "demo (offline demo model)" if runtime.uses_demo_model else "ok"
    body = {
        "status": "ready" if ok else "not ready",
        "checks": {"redis": redis_detail, "auth": auth_detail, "model": model_detail},
        "models": models,
    }
    return JSONResponse(body, status_code=200 if ok else 503)
