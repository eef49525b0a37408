"""The JWT verifier's fixtures: a real JWKS served over loopback HTTP, and verifiers on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from auth.jwt_tokens import JWTVerifier
from graphs.errors import Unauthenticated
from tests.jwks import (
    AUDIENCE,
    ISSUER,
    JWKSServer,
    serving_jwks,
)


@pytest.fixture(scope="module")
def jwks_server() -> Iterator[JWKSServer]:
    with serving_jwks() as state:
        yield state


@pytest.fixture
def jwks(jwks_server: JWKSServer) -> JWKSServer:
    jwks_server.reset()
    return jwks_server


MakeVerifier = Callable[..., JWTVerifier]


@pytest.fixture
async def make_verifier(jwks: JWKSServer) -> AsyncIterator[MakeVerifier]:
    """JWTVerifiers on the test server (keyword arguments override), closed after the test."""
    made: list[JWTVerifier] = []

    def make(**overrides: Any) -> JWTVerifier:
        options: dict[str, Any] = {
            "jwks_url": jwks.url,
            "jwks_file": None,
            "issuer": ISSUER,
            "audience": AUDIENCE,
            "algorithms": ["RS256", "ES256", "PS256"],
        }
        made.append(JWTVerifier(**{**options, **overrides}))
        return made[-1]

    yield make
    for verifier in made:
        await verifier.aclose()


async def refused(verifier: JWTVerifier, token: str) -> str:
    """The message of the Unauthenticated that `token` gets (which must not quote it)."""
    with pytest.raises(Unauthenticated) as caught:
        await verifier.principal(token)
    assert caught.value.status == 401
    assert caught.value.headers()["WWW-Authenticate"] == (
        'Bearer realm="graphgate", error="invalid_token"'
    )
    for part in [token, *token.split(".")]:
        assert len(part) < 4 or part not in caught.value.message
    return caught.value.message
