"""AUTH_MODE=jwt end to end: a server verifies tokens against the JWKS this test serves; a valid
token's subject is the principal, and every bad token is 401 before any work is done."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import ISSUED_SECRETS
from tests.jwks import (
    AUDIENCE,
    ISSUER,
    RSA_KEY,
    STRANGER_KEY,
    JWKSServer,
    claims,
    sign,
    unsigned,
)
from tests.live_servers import Graphgate, StartGraphgate


@pytest.fixture(scope="module")
def jwt_server(graphgate_factory: StartGraphgate, jwks_server: JWKSServer) -> Graphgate:
    return graphgate_factory(
        "redis",
        AUTH_MODE="jwt",
        JWT_JWKS_URL=jwks_server.url,
        JWT_ISSUER=ISSUER,
        JWT_AUDIENCE=AUDIENCE,
    )


def issued(token: str) -> dict[str, str]:
    ISSUED_SECRETS.add(token)
    return {"Authorization": f"Bearer {token}"}


def invoke(server: Graphgate, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(
        f"{server.url}/chat/invoke", json={"input": {"question": "hi"}}, headers=headers
    )


def test_a_token_signed_by_a_key_of_the_jwks_works_and_its_subject_is_the_principal(
    jwt_server: Graphgate,
) -> None:
    subject = f"auth0|{uuid.uuid4().hex[:8]}"
    headers = issued(sign(RSA_KEY, "rsa-1", sub=subject))
    response = invoke(jwt_server, headers)
    assert response.status_code == 200
    assert response.json()["output"]["content"] == "Echo: hi"
    assert httpx.get(f"{jwt_server.url}/usage", headers=headers).json()["principal"] == subject


BAD_TOKENS: dict[str, Callable[[], str]] = {
    "expired": lambda: sign(RSA_KEY, "rsa-1", exp=int(time.time()) - 3600),
    "wrong audience": lambda: sign(RSA_KEY, "rsa-1", aud="someone-else"),
    "wrong issuer": lambda: sign(RSA_KEY, "rsa-1", iss="https://evil.example/"),
    "alg none": lambda: unsigned({"alg": "none", "typ": "JWT"}, claims()) + ".",
    "unknown kid": lambda: sign(STRANGER_KEY, "no-such-kid"),
    "known kid, other key": lambda: sign(STRANGER_KEY, "rsa-1"),
    "not a jwt": lambda: "not-a-jwt",
}


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
def test_a_bad_token_is_401(jwt_server: Graphgate, kind: str) -> None:
    response = invoke(jwt_server, issued(BAD_TOKENS[kind]()))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_no_token_is_401(jwt_server: Graphgate) -> None:
    response = invoke(jwt_server, {})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
