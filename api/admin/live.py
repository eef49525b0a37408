"""`GET /admin/live`: what the service is doing now. Requests in flight, open streams and
model calls on every worker that reported in the last intervals (`api/admin/live_board.py`), the
cluster-wide concurrency in use, the principals near their rate limit or daily budget, and the
errors answered in the last `ADMIN_ERROR_MINUTES`, by code.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request

from api.admin.keys import key_store
from api.admin.live_board import STALE_AFTER_REPORTS, Reporter, WorkerState, minute_of
from api.caller import Admin
from graphs.identity import Quota
from graphs.limits.budget import NANO_USD
from graphs.limits.reservations import budget_caps
from graphs.nodes.limit import rate_limit
from graphs.route_services import RouteServices
from graphs.service import GraphService

router = APIRouter(prefix="/admin", tags=["admin"])


def near(
    principal: str, limit: str, used: float, allowed: float | None, ratio: float
) -> dict[str, Any] | None:
    """A principal's use of one limit, if it is at least `ratio` of it (an unset or 0 limit
    is off)."""
    if not allowed or used < ratio * allowed:
        return None
    return {"principal": principal, "limit": limit, "used": used, "allowed": allowed}


async def quotas(request: Request) -> dict[str, Quota]:
    """Each principal's own limits, from its keys in Redis (a principal with several keys: the
    first that sets any, in the key store's order)."""
    store = key_store(request)
    found: dict[str, Quota] = {}
    for record in await store.records() if store is not None else []:
        if any(value is not None for value in vars(record.quota).values()):
            found.setdefault(record.principal, record.quota)
    return found


async def near_limits(services: RouteServices, own: dict[str, Quota]) -> list[dict[str, Any]]:
    """The principals active today whose request window or spend today is near their limit."""
    ratio = services.settings.admin_near_limit_ratio
    await services.usage.overview.flush()
    today = await services.usage.overview.principals([services.clock.today()])
    in_window = await services.limiter.in_window(sorted(today))
    found = []
    for principal, counters in today.items():
        # The limits admission applies (a key's, else the server's; 0: off).
        quota = own.get(principal, Quota())
        rate = rate_limit(services, quota)
        budget = budget_caps(services, quota).daily_nano_usd / NANO_USD
        found += [
            near(principal, "rate", in_window.get(principal, 0), rate, ratio),
            near(principal, "daily_budget_usd", counters.get("cost_usd", 0.0), budget, ratio),
        ]
    close = [entry for entry in found if entry is not None]
    return sorted(close, key=lambda entry: -entry["used"] / entry["allowed"])


def with_own_state(workers: list[WorkerState], reporter: Reporter) -> list[WorkerState]:
    """The reports, this worker's replaced by its state now."""
    own = reporter.state()
    return [own, *(state for state in workers if state.worker != own.worker)]


@router.get("/live")
async def live_state(admin: Admin, request: Request) -> dict[str, Any]:
    service: GraphService = request.app.state.graphs
    services = service.chat.services
    settings = services.settings
    reporter: Reporter = request.app.state.live
    now = time.time()
    fresh_since = now - STALE_AFTER_REPORTS * settings.live_report_seconds
    workers = with_own_state(await reporter.board.workers(fresh_since), reporter)
    last = minute_of(now)
    errors = await reporter.board.errors(range(last - settings.admin_error_minutes + 1, last + 1))
    errors.update(reporter.unreported_errors())
    return {
        "workers": [asdict(state) for state in workers],
        "in_flight": sum(state.in_flight for state in workers),
        "open_streams": sum(state.open_streams for state in workers),
        "model_calls": sum(state.model_calls for state in workers),
        "global_concurrency": {
            "limit": settings.global_max_concurrency or None,
            "in_use": await services.slots.global_in_use(),
        },
        "near_limits": await near_limits(services, await quotas(request)),
        "errors": {"minutes": settings.admin_error_minutes, "by_code": dict(errors)},
    }
