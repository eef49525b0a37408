"""`GET /admin/usage`: usage and cost over a range of UTC days, for the console's charts: every
day in total, by model and by route, and the principals ranked over the range; or one
principal's days by model, from the same ledger `GET /usage` reads. Every figure is read
pre-aggregated (a few keys per day), whatever the number of principals and requests.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request

from api.caller import Admin
from graphs.identity import PRINCIPAL_PATTERN
from graphs.limits.usage import last_days
from graphs.limits.usage_counters import COUNTERS, TOTAL, counter_value
from graphs.limits.usage_overview import Counters, DayOverview
from graphs.service import GraphService

router = APIRouter(prefix="/admin", tags=["admin"])

RankedBy = Literal[
    "cost_usd", "requests", "total_tokens", "input_tokens", "output_tokens", "cache_hits",
    "partial_requests",
]  # fmt: skip


def complete(counters: Counters) -> Counters:
    """Every counter of the ledger, 0 where none was recorded."""
    return {name: counters.get(name, counter_value(name, 0)) for name in COUNTERS}


def day_view(day: str, overview: DayOverview) -> dict[str, Any]:
    return {
        "date": day,
        "total": complete(overview.total),
        "models": {name: complete(c) for name, c in overview.models.items()},
        "routes": {name: complete(c) for name, c in overview.routes.items()},
    }


def ranked(principals: dict[str, Counters], by: str, top: int) -> list[dict[str, Any]]:
    """The `top` principals by `by`, then by name."""
    order = sorted(principals.items(), key=lambda item: (-item[1].get(by, 0), item[0]))
    return [{"principal": name, **complete(counters)} for name, counters in order[:top]]


@router.get("/usage")
async def usage_overview(
    admin: Admin,
    request: Request,
    days: int = Query(default=30, ge=1, le=366),
    principal: str | None = Query(default=None, pattern=PRINCIPAL_PATTERN.pattern),
    top: int = Query(default=50, ge=1, le=1000),
    by: RankedBy = "cost_usd",
) -> dict[str, Any]:
    """The last `days` UTC days, oldest first (a day without usage has empty counters). Without
    `principal`: every principal's usage by model and route, and the `top` principals over the
    range by `by`. With it: that principal's usage by model (as `GET /usage` shows it to them)."""
    service: GraphService = request.app.state.graphs
    services = service.chat.services
    dates = sorted(last_days(days, services.clock))
    if principal is not None:
        own = await services.usage.days(principal, dates)
        return {
            "principal": principal,
            "days": [
                {"date": day, "total": complete(usage.pop(TOTAL, {})), "models": usage}
                for day, usage in ((d.isoformat(), own.get(d.isoformat(), {})) for d in dates)
            ],
        }
    overview = services.usage.overview
    await overview.flush()  # this worker's own sums are in what it reads
    by_day = await overview.days(dates)
    principals = await overview.principals(dates)
    return {
        "days": [day_view(day, by_day.get(day, DayOverview())) for day in map(str, dates)],
        "principal_count": len(principals),
        "principals": ranked(principals, by, top),
    }
