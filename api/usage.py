"""`GET /usage`: the caller's tokens, requests and cost by UTC day and by model, or one of its
end users' (`/v1`'s `user`) by day."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from api.caller import Caller
from api.openai_request import END_USER_MAX_CHARS
from graphs.limits.usage import last_days
from graphs.service import GraphService

router = APIRouter(tags=["usage"])


@router.get("/usage")
async def read_usage(
    caller: Caller,
    request: Request,
    days: int = Query(default=7, ge=1, le=90),
    end_user: str | None = Query(default=None, min_length=1, max_length=END_USER_MAX_CHARS),
) -> dict[str, Any]:
    service: GraphService = request.app.state.graphs
    services = service.chat.services
    dates = last_days(days, services.clock)
    if end_user is not None:
        shares = await services.usage.end_user_days(caller.name, end_user, dates)
        return {
            "principal": caller.name,
            "end_user": end_user,
            "days": [{"date": day, "total": total} for day, total in shares.items()],
        }
    by_day = await services.usage.days(caller.name, dates)
    return {
        "principal": caller.name,
        "days": [
            {"date": day, "total": usage.pop("total", {}), "models": usage}
            for day, usage in by_day.items()
        ],
    }
