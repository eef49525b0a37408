"""Who may use the console and `/admin/`: an admin of each `AUTH_MODE` (a key made with
`--admin`, a token whose roles claim names the admin role, a gateway's roles header, a client on
the loopback with no authentication), and nobody else: 403 `forbidden` for any other principal,
401 with no credential. The console's page itself holds no data and is served to anyone."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from auth.api_keys import parse_key_line
from tests.admin.conftest import AdminApp, IssueKey, bearer
from tests.conftest import create_key
from tests.jwks import AUDIENCE, ISSUER, RSA_KEY, default_jwks, sign

ADMIN_READS = ["/admin/usage", "/admin/keys", "/admin/live", "/admin/principals/p/threads"]


def assert_forbidden(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["code"] == "forbidden"
    assert error["trace_id"] == response.headers["X-Trace-Id"]


async def test_an_admin_key_reads_every_admin_route_and_others_are_refused(
    admin_app: AdminApp, issue_key: IssueKey, principal: str
) -> None:
    admin_key = await issue_key(f"{principal}-admin", admin=True)
    user_key = await issue_key(principal)
    async with admin_app("redis", auth_mode="api_key") as client:
        for path in ADMIN_READS:
            assert (await client.get(path, headers=bearer(admin_key))).status_code == 200, path
            assert_forbidden(await client.get(path, headers=bearer(user_key)))
            refused = await client.get(path)
            assert refused.status_code == 401
            assert refused.json()["error"]["code"] == "unauthenticated"
        assert_forbidden(
            await client.post("/admin/keys", json={"principal": "x"}, headers=bearer(user_key))
        )
        assert_forbidden(await client.delete("/admin/keys/abc", headers=bearer(user_key)))
        # The page is static and open; what it shows comes from the API above.
        page = await client.get("/console/")
        assert page.status_code == 200
        assert "graphgate console" in page.text
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    ("client", "admin"),
    [(("127.0.0.1", 5000), True), (("::1", 5000), True), (("10.1.2.3", 5000), False)],
)
async def test_without_authentication_only_a_loopback_client_is_an_admin(
    admin_app: AdminApp, client: tuple[str, int], admin: bool
) -> None:
    async with admin_app("embedded", client=client) as http:
        response = await http.get("/admin/live")
        if admin:
            assert response.status_code == 200
        else:
            assert_forbidden(response)


async def test_without_authentication_in_production_nobody_is_an_admin(admin_app: AdminApp) -> None:
    async with admin_app(
        "redis",
        app_env="production",
        allow_anonymous=True,
        metrics_token="m" * 32,
        openai_base_url="http://127.0.0.1:9/v1",
    ) as http:
        assert_forbidden(await http.get("/admin/live"))


async def test_a_gateways_roles_header_makes_an_admin_only_when_every_copy_names_the_role(
    admin_app: AdminApp,
) -> None:
    roles = "X-Authenticated-Roles"
    async with admin_app("embedded", auth_mode="trusted_header", auth_roles_header=roles) as http:
        user = {"X-Authenticated-User": "ops"}
        ok = await http.get(
            "/admin/live", headers={**user, "X-Authenticated-Roles": "viewer, admin"}
        )
        assert ok.status_code == 200
        assert_forbidden(await http.get("/admin/live", headers=user))
        assert_forbidden(
            await http.get(
                "/admin/live", headers={**user, "X-Authenticated-Roles": "administrator"}
            )
        )
        # A client's own copy beside the gateway's cannot raise it.
        two = httpx.Headers(
            [*user.items(), ("X-Authenticated-Roles", "admin"), ("X-Authenticated-Roles", "viewer")]
        )
        assert_forbidden(await http.get("/admin/live", headers=two))


async def test_a_tokens_roles_claim_makes_an_admin(admin_app: AdminApp, tmp_path: Path) -> None:
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(default_jwks()))
    async with admin_app(
        "embedded", auth_mode="jwt", jwt_jwks_file=jwks, jwt_issuer=ISSUER, jwt_audience=AUDIENCE
    ) as http:
        for roles in (["admin"], "openid admin"):
            token = sign(RSA_KEY, "rsa-1", roles=roles)
            assert (await http.get("/admin/live", headers=bearer(token))).status_code == 200
        # Keycloak's realm roles, named by a path into the claims.
        keycloak = sign(RSA_KEY, "rsa-1", realm_access={"roles": ["admin"]})
        assert_forbidden(await http.get("/admin/live", headers=bearer(keycloak)))
        for refused in (None, ["viewer"], "administrators", {"admin": True}):
            token = sign(RSA_KEY, "rsa-1", roles=refused)
            assert_forbidden(await http.get("/admin/live", headers=bearer(token)))


async def test_keys_made_by_the_cli_with_admin_open_the_admin_api_in_a_file_and_in_redis(
    admin_app: AdminApp, redis_url: str, principal: str, tmp_path: Path
) -> None:
    keys_file = tmp_path / "keys"
    keys_file.touch()
    in_file = create_key(principal, "--admin", "--file", str(keys_file))
    plain_in_file = create_key(f"{principal}-user", "--file", str(keys_file))
    in_redis = create_key(f"{principal}-r", "--admin", redis_url=redis_url)
    assert "role=admin" in keys_file.read_text().splitlines()[0]
    async with admin_app("redis", auth_mode="api_key", api_keys_file=keys_file) as http:
        for key in (in_file, in_redis):
            assert (await http.get("/admin/live", headers=bearer(key.key))).status_code == 200
        assert_forbidden(await http.get("/admin/live", headers=bearer(plain_in_file.key)))
        listed = (await http.get("/admin/keys", headers=bearer(in_file.key))).json()["keys"]
        admins = {k["key_id"] for k in listed if k["admin"]}
        assert {in_file.key_id, in_redis.key_id} <= admins
        assert plain_in_file.key_id not in admins


async def test_no_roles_header_is_trusted_until_one_is_named(admin_app: AdminApp) -> None:
    """A gateway set up before admins existed passes a client's own roles header through."""
    async with admin_app("embedded", auth_mode="trusted_header") as http:
        headers = {"X-Authenticated-User": "ops", "X-Authenticated-Roles": "admin"}
        assert_forbidden(await http.get("/admin/live", headers=headers))


async def test_a_loopback_client_naming_another_host_is_not_an_admin(admin_app: AdminApp) -> None:
    """A page whose own name its DNS points at 127.0.0.1 reaches the loopback under that name."""
    async with admin_app("embedded") as http:
        for host in ("evil.example", "evil.example:8000", "localhost.evil.example"):
            assert_forbidden(await http.get("/admin/live", headers={"Host": host}))
        for host in ("localhost", "127.0.0.1:8000", "[::1]:8000"):
            assert (await http.get("/admin/live", headers={"Host": host})).status_code == 200


def test_a_keys_file_line_names_no_role_but_admin() -> None:
    with pytest.raises(ValueError, match="role"):
        parse_key_line(f"someone {'a' * 64} role=viewer")
    record = parse_key_line(f"someone {'a' * 64} role=admin rate_limit_max=3")
    assert record is not None
    assert record.admin


async def test_a_roles_claim_can_be_a_path_into_nested_claims(
    admin_app: AdminApp, tmp_path: Path
) -> None:
    (jwks := tmp_path / "jwks.json").write_text(json.dumps(default_jwks()))
    async with admin_app(
        "embedded",
        auth_mode="jwt",
        jwt_jwks_file=jwks,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        jwt_roles_claim="realm_access.roles",
    ) as http:
        keycloak = sign(RSA_KEY, "rsa-1", realm_access={"roles": ["offline_access", "admin"]})
        assert (await http.get("/admin/live", headers=bearer(keycloak))).status_code == 200
        viewer = sign(RSA_KEY, "rsa-1", realm_access={"roles": ["viewer"]})
        assert_forbidden(await http.get("/admin/live", headers=bearer(viewer)))
