"""Cached JWKS keys have a bounded stale life: while the identity provider's key set cannot be
fetched, the cached keys keep verifying tokens for `JWT_JWKS_MAX_STALE_SECONDS` past their
cache time, then tokens get 503 `unavailable` (the server cannot tell a valid token from one
signed by a key the provider has since removed) and readiness says why, until a fetch succeeds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from auth.jwt_tokens import NO_KEYS, JWTVerifier
from graphs.errors import Unauthenticated, Unavailable
from tests.clock import SetClock
from tests.conftest import ISSUED_SECRETS
from tests.jwks import AUDIENCE, ISSUER, ROTATED_KEY, RSA_KEY, public_jwk, serving_jwks, sign
from tests.live_servers import StartGraphgate

CACHE, MAX_STALE = 60.0, 600.0

MakeVerifier = Callable[..., JWTVerifier]


@pytest.fixture
async def make_verifier(clock: SetClock) -> AsyncIterator[MakeVerifier]:
    """Verifiers on the time of `clock`, closed after the test."""
    made: list[JWTVerifier] = []

    def make(url: str, **overrides: Any) -> JWTVerifier:
        options: dict[str, Any] = {
            "jwks_url": url,
            "jwks_file": None,
            "issuer": ISSUER,
            "audience": AUDIENCE,
            "algorithms": ["RS256"],
            "cache_seconds": CACHE,
            "max_stale_seconds": MAX_STALE,
            "monotonic": clock.monotonic,
        }
        made.append(JWTVerifier(**{**options, **overrides}))
        return made[-1]

    yield make
    for verifier in made:
        await verifier.aclose()


@pytest.fixture
def clock() -> SetClock:
    return SetClock()


async def test_a_taken_down_jwks_keeps_the_cached_keys_for_their_stale_life_only(
    make_verifier: MakeVerifier, clock: SetClock
) -> None:
    token = sign(RSA_KEY, "rsa-1")
    with serving_jwks() as jwks:
        verifier = make_verifier(jwks.url)
        assert await verifier.principal(token) == "user-42"
        assert await verifier.key_problem() is None
    # The provider is gone (its port closed): the cached keys carry on while they are stale...
    clock.now += CACHE + MAX_STALE - 1
    assert await verifier.principal(token) == "user-42"
    assert await verifier.key_problem() is None
    # ...and not one second longer.
    clock.now += 1
    with pytest.raises(Unavailable) as refused:
        await verifier.principal(token)
    assert refused.value.status == 503
    assert "Retry-After" in refused.value.headers()
    problem = await verifier.key_problem()
    assert problem is not None
    assert "JWKS" in problem


async def test_a_fetch_after_the_outage_restores_the_keys(
    make_verifier: MakeVerifier, clock: SetClock
) -> None:
    token = sign(RSA_KEY, "rsa-1")
    with serving_jwks() as jwks:
        verifier = make_verifier(jwks.url)
        await verifier.principal(token)
        jwks.status = 503
        clock.now += CACHE + MAX_STALE
        with pytest.raises(Unavailable):
            await verifier.principal(token)
        jwks.status = 200
        clock.now += 10  # the refetch rate limit
        assert await verifier.principal(token) == "user-42"
        assert await verifier.key_problem() is None


async def test_a_key_rotated_out_of_a_reachable_jwks_is_refused_once_the_cache_expires(
    make_verifier: MakeVerifier, clock: SetClock
) -> None:
    old, new = sign(RSA_KEY, "rsa-1"), sign(ROTATED_KEY, "rsa-2")
    with serving_jwks() as jwks:
        verifier = make_verifier(jwks.url)
        await verifier.principal(old)
        jwks.document = {"keys": [public_jwk(ROTATED_KEY, "rsa-2", "RS256")]}
        clock.now += CACHE
        with pytest.raises(Unauthenticated):
            await verifier.principal(old)
        assert await verifier.principal(new) == "user-42"


def poll(check: Callable[[], bool], within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def test_a_server_refuses_tokens_with_503_and_is_not_ready_once_the_keys_are_too_old(
    graphgate_factory: StartGraphgate,
) -> None:
    token = sign(RSA_KEY, "rsa-1")
    ISSUED_SECRETS.add(token)
    headers = {"Authorization": f"Bearer {token}"}
    with serving_jwks() as jwks:
        server = graphgate_factory(
            fresh=True,
            AUTH_MODE="jwt",
            JWT_JWKS_URL=jwks.url,
            JWT_ISSUER=ISSUER,
            JWT_AUDIENCE=AUDIENCE,
            JWT_JWKS_CACHE_SECONDS="1",
            JWT_JWKS_MAX_STALE_SECONDS="2",
        )
        assert httpx.get(f"{server.url}/usage", headers=headers).status_code == 200
    # The JWKS server is down from here on.
    assert httpx.get(f"{server.url}/usage", headers=headers).status_code == 200

    def refused() -> bool:
        return httpx.get(f"{server.url}/usage", headers=headers).status_code == 503

    assert poll(refused, within=15)
    # The server's cache clock starts when its fetch came back, after the JWKS served it.
    assert time.monotonic() - jwks.served_at >= 1 + 2
    answer = httpx.get(f"{server.url}/usage", headers=headers)
    assert answer.json()["error"]["code"] == "unavailable"
    assert "Retry-After" in answer.headers
    ready = httpx.get(f"{server.url}/health/ready")
    assert ready.status_code == 503
    assert "JWKS" in ready.json()["checks"]["auth"]


async def test_readiness_answers_within_a_probes_timeout_while_the_provider_hangs(
    make_verifier: MakeVerifier,
) -> None:
    """A JWKS endpoint that accepts and never answers: the refetch runs on in the background,
    and readiness says there are no keys well inside the chart's 3 s probe timeout."""

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the verifier gives up and closes

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    verifier = make_verifier(f"http://127.0.0.1:{port}/jwks.json", http_timeout=8.0)
    started = time.monotonic()
    async with server:
        problem = await verifier.key_problem()
        answered_in = time.monotonic() - started
        await verifier.aclose()
    assert problem == NO_KEYS
    assert answered_in < 3.0
