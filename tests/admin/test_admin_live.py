"""`/admin/live`: requests in flight and open streams on every worker that reports (this one's
as it is now), the principals near their rate limit or daily budget, and the errors answered in
the last minutes by code, including those of a worker whose report went through Redis."""

from __future__ import annotations

import os
import time
from collections import Counter

import pytest

from api.admin.live_board import RedisLiveBoard, WorkerState
from graphs.store.keys import RedisKeys
from tests.admin.conftest import AdminApp, IssueKey, bearer
from tests.redis_servers import RedisFlavours

BAD_TURN = {"input": {"question": ""}}


async def test_near_limits_and_recent_errors_show_embedded(
    admin_app: AdminApp, principal: str
) -> None:
    async with admin_app("embedded", rate_limit_max=5, daily_budget_usd=0) as http:
        user = {"X-User-Id": principal}
        for turn in range(4):
            body = {"input": {"question": f"turn {turn}"}}
            assert (await http.post("/chat/invoke", json=body, headers=user)).status_code == 200
        refused = await http.post("/chat/invoke", json=BAD_TURN, headers=user)
        assert refused.status_code == 400
        live = (await http.get("/admin/live")).json()
        assert live["near_limits"] == [
            {"principal": principal, "limit": "rate", "used": 4, "allowed": 5}
        ]
        assert live["errors"]["by_code"][refused.json()["error"]["code"]] >= 1
        assert live["in_flight"] >= 1  # this request
        assert live["workers"][0]["worker"].endswith(f":{os.getpid()}")


@pytest.mark.parametrize("flavour", ["redis", "cluster"])
async def test_other_workers_reports_and_errors_come_through_redis(
    admin_app: AdminApp,
    issue_key: IssueKey,
    redis_flavours: RedisFlavours,
    prefix: str,
    principal: str,
    flavour: str,
) -> None:
    admin = bearer(await issue_key(principal, admin=True, flavour=flavour, prefix=prefix))
    redis = redis_flavours.async_client(flavour)
    board = RedisLiveBoard(redis, RedisKeys(prefix), 3600)
    now = time.time()
    try:
        await board.report(WorkerState("other-pod:7", 3, 2, 1, now), Counter({"rate_limited": 4}))
        await board.report(
            WorkerState("dead-pod:9", 9, 9, 9, now - 600), Counter({"upstream_error": 1})
        )
        async with admin_app(flavour, auth_mode="api_key", redis_prefix=prefix) as http:
            live = (await http.get("/admin/live", headers=admin)).json()
        workers = {w["worker"]: w for w in live["workers"]}
        assert workers["other-pod:7"]["open_streams"] == 2
        assert "dead-pod:9" not in workers  # it stopped reporting
        assert live["open_streams"] >= 2
        assert live["errors"]["by_code"]["rate_limited"] == 4
        assert live["errors"]["by_code"]["upstream_error"] == 1  # ten minutes ago: in the hour
    finally:
        await redis.aclose()
