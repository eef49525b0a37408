"""`/admin/usage` reads usage across principals pre-aggregated, and its figures are the ledger's:
each principal's row and one principal's days equal what `GET /usage` shows that principal,
and the days in total, by model and by route add up to them, on every Redis flavour and
embedded."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from scripts.processes import ROOT
from tests.admin.conftest import AdminApp, IssueKey, bearer
from tests.conftest import ALL_MODES

ROUTES_FILE = ROOT / "examples" / "routes.toml"
SUMMED = ("requests", "input_tokens", "output_tokens", "total_tokens", "cost_usd")


async def own_today(http: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    """Today's totals as `GET /usage` shows them to the caller."""
    days = (await http.get("/usage", params={"days": 1}, headers=headers)).json()["days"]
    total: dict[str, Any] = days[0]["total"]
    return total


async def turns(
    http: httpx.AsyncClient, headers: dict[str, str], chats: int, summaries: int
) -> None:
    for turn in range(chats):
        body = {
            "input": {"question": f"turn {turn}"},
            "config": {"configurable": {"session_id": "s"}},
        }
        assert (await http.post("/chat/invoke", json=body, headers=headers)).status_code == 200
    for turn in range(summaries):
        body = {"input": {"question": f"text {turn}"}}
        assert (await http.post("/summarize/invoke", json=body, headers=headers)).status_code == 200


@pytest.mark.parametrize("mode", ALL_MODES)
async def test_the_overview_equals_each_principals_own_usage(
    admin_app: AdminApp, issue_key: IssueKey, principal: str, prefix: str, mode: str
) -> None:
    names = [f"{principal}-a", f"{principal}-b"]
    settings: dict[str, Any] = {"routes_file": ROUTES_FILE, "redis_prefix": prefix}
    if mode == "embedded":
        users = [{"X-User-Id": name} for name in names]
        admin: dict[str, str] = {}
    else:
        settings["auth_mode"] = "api_key"
        users = [bearer(await issue_key(name, flavour=mode, prefix=prefix)) for name in names]
        admin = bearer(await issue_key(f"{principal}-ops", admin=True, flavour=mode, prefix=prefix))
    async with admin_app(mode, **settings) as http:
        await turns(http, users[0], chats=2, summaries=1)
        await turns(http, users[1], chats=1, summaries=0)
        own = [await own_today(http, headers) for headers in users]
        overview = (await http.get("/admin/usage", params={"days": 3}, headers=admin)).json()

        assert [day["date"] for day in overview["days"]] == sorted(
            day["date"] for day in overview["days"]
        )
        assert len(overview["days"]) == 3
        today = overview["days"][-1]
        for counter in SUMMED:
            both = own[0][counter] + own[1][counter]
            assert today["total"][counter] == pytest.approx(both), counter
            assert sum(r[counter] for r in today["routes"].values()) == pytest.approx(both)
            assert sum(m[counter] for m in today["models"].values()) == pytest.approx(both)
        assert today["routes"]["chat"]["requests"] == 3
        assert today["routes"]["summarize"]["requests"] == 1
        assert overview["principal_count"] == 2
        rows = {row["principal"]: row for row in overview["principals"]}
        for name, totals in zip(names, own, strict=True):
            assert {c: rows[name][c] for c in SUMMED} == pytest.approx(
                {c: totals[c] for c in SUMMED}
            )

        one = (
            await http.get("/admin/usage", params={"days": 3, "principal": names[0]}, headers=admin)
        ).json()
        assert one["days"][-1]["total"] == own[0]
        top = (
            await http.get("/admin/usage", params={"top": 1, "by": "requests"}, headers=admin)
        ).json()
        assert [row["principal"] for row in top["principals"]] == [names[0]]


async def test_bad_ranges_are_refused_by_name(admin_app: AdminApp, prefix: str) -> None:
    async with admin_app("embedded", redis_prefix=prefix) as http:
        for params in (
            {"days": 0},
            {"days": 367},
            {"top": 0},
            {"by": "prompt"},
            {"principal": "a:b"},
        ):
            response = await http.get("/admin/usage", params=params)
            assert response.status_code == 422, params
            assert response.json()["error"]["code"] == "validation_error"
