"""`/admin/keys`: an admin creates a key (its secret shown once), the key works at once, its
quota changes and its revocation hold at the key's next request, every change is one audit
line that never holds the key, and what graphgate does not keep (a keys file's keys, keys with
no Redis) is listed or refused by name, never changed in place."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from auth.api_keys import KeyRecord, key_hash, key_line
from tests.admin.conftest import AdminApp, IssueKey, bearer
from tests.conftest import REDIS_FLAVOURS

INVOKE = {"input": {"question": "hi"}}


@pytest.mark.parametrize("flavour", REDIS_FLAVOURS)
async def test_a_created_key_works_then_its_quota_and_revocation_hold_at_its_next_request(
    admin_app: AdminApp,
    issue_key: IssueKey,
    principal: str,
    flavour: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    audit = logging.getLogger("graphgate.audit")
    admin_key = await issue_key(f"{principal}-ops", admin=True, flavour=flavour)
    admin, admin_key_id = bearer(admin_key), key_hash(admin_key)[:12]
    async with admin_app(flavour, auth_mode="api_key", key_last_used_resolution=0) as http:
        # The app's logging set-up replaced the root's handlers: listen on the audit logger.
        audit.addHandler(caplog.handler)
        try:
            created = await http.post(
                "/admin/keys", json={"principal": principal, "rate_limit_max": 5}, headers=admin
            )
            assert created.status_code == 201, created.text
            assert created.headers["Cache-Control"] == "no-store"  # it holds the key
            body = created.json()
            key, key_id = body["key"], body["key_id"]
            assert key_id == key_hash(key)[:12]
            assert body["quota"]["rate_limit_max"] == 5
            assert body["admin"] is False

            user = bearer(key)
            assert (await http.post("/chat/invoke", json=INVOKE, headers=user)).status_code == 200
            listed = {
                k["key_id"]: k
                for k in (await http.get("/admin/keys", headers=admin)).json()["keys"]
            }
            assert "key" not in listed[key_id]
            assert listed[key_id]["principal"] == principal
            assert listed[key_id]["last_used"] is not None

            # One request left in the window of 2: the next is refused.
            changed = await http.patch(
                f"/admin/keys/{key_id}", json={"rate_limit_max": 2}, headers=admin
            )
            assert changed.status_code == 200
            assert changed.json()["quota"] == {
                "rate_limit_max": 2,
                "tokens_per_minute": None,
                "daily_budget_usd": None,
            }
            assert (await http.post("/chat/invoke", json=INVOKE, headers=user)).status_code == 200
            assert (await http.post("/chat/invoke", json=INVOKE, headers=user)).status_code == 429
            # A field left out stays; null gives the server's setting back.
            await http.patch(f"/admin/keys/{key_id}", json={"daily_budget_usd": 3.5}, headers=admin)
            kept = await http.patch(
                f"/admin/keys/{key_id}", json={"rate_limit_max": None}, headers=admin
            )
            assert kept.json()["quota"] == {
                "rate_limit_max": None,
                "tokens_per_minute": None,
                "daily_budget_usd": 3.5,
            }
            assert (await http.post("/chat/invoke", json=INVOKE, headers=user)).status_code == 200

            assert (await http.delete(f"/admin/keys/{key_id}", headers=admin)).status_code == 204
            refused = await http.post("/chat/invoke", json=INVOKE, headers=user)
            assert refused.status_code == 401
            assert (await http.delete(f"/admin/keys/{key_id}", headers=admin)).status_code == 404
            assert (
                await http.patch(f"/admin/keys/{key_id}", json={}, headers=admin)
            ).status_code == 404
        finally:
            audit.removeHandler(caplog.handler)
    lines = [r for r in caplog.records if r.name == "graphgate.audit"]
    actions = [line.audit["action"] for line in lines]  # type: ignore[attr-defined]
    assert actions == ["created key", "changed key", "changed key", "changed key", "revoked key"]
    assert {line.audit["actor"] for line in lines} == {f"{principal}-ops"}  # type: ignore[attr-defined]
    assert all(line.audit["target"] == key_id for line in lines)  # type: ignore[attr-defined]
    assert {line.audit["actor_key_id"] for line in lines} == {admin_key_id}  # type: ignore[attr-defined]
    assert key not in caplog.text
    assert all(key not in json.dumps(line.audit) for line in lines)  # type: ignore[attr-defined]


async def test_an_admin_key_made_here_opens_the_admin_api(
    admin_app: AdminApp, issue_key: IssueKey, principal: str
) -> None:
    admin = bearer(await issue_key(f"{principal}-ops", admin=True))
    async with admin_app("redis", auth_mode="api_key") as http:
        made = await http.post(
            "/admin/keys", json={"principal": principal, "admin": True}, headers=admin
        )
        assert (
            await http.get("/admin/live", headers=bearer(made.json()["key"]))
        ).status_code == 200


async def test_bad_key_requests_are_refused_by_name(
    admin_app: AdminApp, issue_key: IssueKey, principal: str
) -> None:
    admin = bearer(await issue_key(f"{principal}-ops", admin=True))
    async with admin_app("redis", auth_mode="api_key") as http:
        for body in (
            {"principal": "has:colon"},
            {"principal": principal, "rate_limit_max": -1},
            {"principal": principal, "extra": 1},
            {},
        ):
            response = await http.post("/admin/keys", json=body, headers=admin)
            assert response.status_code == 422, body
            assert response.json()["error"]["code"] == "validation_error"
        past = await http.post(
            "/admin/keys",
            json={"principal": principal, "expires_at": "2020-01-01T00:00:00Z"},
            headers=admin,
        )
        assert past.status_code == 400
        assert past.json()["error"]["code"] == "invalid_input"


async def test_a_keys_files_keys_are_listed_and_not_changed_here(
    admin_app: AdminApp, issue_key: IssueKey, principal: str, tmp_path: Path
) -> None:
    file_key = "gg_file-key-" + principal
    record = KeyRecord(principal, key_hash(file_key))
    (keys_file := tmp_path / "keys").write_text(key_line(record) + "\n")
    admin = bearer(await issue_key(f"{principal}-ops", admin=True))
    async with admin_app("redis", auth_mode="api_key", api_keys_file=keys_file) as http:
        listed = (await http.get("/admin/keys", headers=admin)).json()["keys"]
        from_file = [k for k in listed if k["source"] == "file"]
        assert [k["key_id"] for k in from_file] == [record.key_id]
        for response in (
            await http.patch(
                f"/admin/keys/{record.key_id}", json={"rate_limit_max": 1}, headers=admin
            ),
            await http.delete(f"/admin/keys/{record.key_id}", headers=admin),
        ):
            assert response.status_code == 409
            assert response.json()["error"]["code"] == "key_not_managed"
        assert (await http.get("/usage", headers=bearer(file_key))).status_code == 200


async def test_with_no_redis_keys_are_not_made_here(admin_app: AdminApp) -> None:
    async with admin_app("embedded") as http:
        response = await http.post("/admin/keys", json={"principal": "someone"})
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "key_not_managed"
        assert (await http.get("/admin/keys")).json() == {"keys": []}
