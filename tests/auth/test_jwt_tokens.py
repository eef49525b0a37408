"""JWTVerifier against a real JWKS served over loopback HTTP: signatures, claims, algorithm
confusion, key rotation and the refetch rate limit, the file mode, and an unreachable provider."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from auth.jwt_tokens import JWTVerifier
from graphs.errors import Unauthenticated, Unavailable
from scripts.processes import free_port
from tests.jwks import (
    AUDIENCE,
    EC_KEY,
    ISSUER,
    ROTATED_KEY,
    RSA_KEY,
    STRANGER_KEY,
    JWKSServer,
    b64url,
    claims,
    default_jwks,
    hmac_confusion_token,
    public_jwk,
    serving_jwks,
    sign,
    unsigned,
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


MALFORMED = [
    "",
    "abc",
    "a.b",
    "a.b.c",
    "...",
    "!!!.@@@.###",
    "e30.e30",
    f"{b64url(b'not json')}.{b64url(b'{}')}.{b64url(b'sig')}",
    f"{b64url(b'[1, 2]')}.{b64url(b'{}')}.{b64url(b'sig')}",
    f"{b64url(json.dumps({'alg': 'RS256', 'kid': 7}).encode())}.e30.{b64url(b'sig')}",
]


async def test_a_valid_rs256_token_gives_its_subject(make_verifier: MakeVerifier) -> None:
    assert await make_verifier().principal(sign(RSA_KEY, "rsa-1")) == "user-42"


async def test_a_valid_es256_token_gives_its_subject(make_verifier: MakeVerifier) -> None:
    token = sign(EC_KEY, "ec-1", "ES256", sub="ec-user")
    assert await make_verifier().principal(token) == "ec-user"


async def test_the_configured_principal_claim_is_used(make_verifier: MakeVerifier) -> None:
    verifier = make_verifier(principal_claim="email")
    token = sign(RSA_KEY, "rsa-1", email="ada@example.test")
    assert await verifier.principal(token) == "ada@example.test"


@pytest.mark.parametrize("value", [None, "", 42, ["ada"]])
async def test_a_missing_or_non_string_principal_is_refused(
    make_verifier: MakeVerifier, value: object
) -> None:
    await refused(make_verifier(), sign(RSA_KEY, "rsa-1", sub=value))


async def test_an_expired_token_is_refused(make_verifier: MakeVerifier) -> None:
    token = sign(RSA_KEY, "rsa-1", exp=int(time.time()) - 120)
    assert await refused(make_verifier(), token) == "The token has expired."


async def test_a_token_expired_within_the_leeway_is_accepted(make_verifier: MakeVerifier) -> None:
    token = sign(RSA_KEY, "rsa-1", exp=int(time.time()) - 10)
    assert await make_verifier(leeway=30).principal(token) == "user-42"


async def test_a_token_not_valid_yet_is_refused(make_verifier: MakeVerifier) -> None:
    await refused(make_verifier(), sign(RSA_KEY, "rsa-1", nbf=int(time.time()) + 600))


@pytest.mark.parametrize("claim", ["exp", "iss", "aud"])
async def test_a_token_without_a_required_claim_is_refused(
    make_verifier: MakeVerifier, claim: str
) -> None:
    await refused(make_verifier(), sign(RSA_KEY, "rsa-1", **{claim: None}))


async def test_a_token_for_another_audience_is_refused(make_verifier: MakeVerifier) -> None:
    message = await refused(make_verifier(), sign(RSA_KEY, "rsa-1", aud="someone-else"))
    assert message == "The token's audience is not accepted."


async def test_a_token_from_another_issuer_is_refused(make_verifier: MakeVerifier) -> None:
    message = await refused(make_verifier(), sign(RSA_KEY, "rsa-1", iss="https://evil.test/"))
    assert message == "The token's issuer is not accepted."


async def test_an_alg_none_token_is_refused(make_verifier: MakeVerifier) -> None:
    for alg in ["none", "None", "NONE"]:
        await refused(make_verifier(), unsigned({"alg": alg, "typ": "JWT"}, claims()) + ".")


async def test_hs256_keyed_with_the_public_key_is_refused(make_verifier: MakeVerifier) -> None:
    await refused(make_verifier(), hmac_confusion_token())


async def test_an_algorithm_outside_the_allow_list_is_refused(
    make_verifier: MakeVerifier,
) -> None:
    verifier = make_verifier(algorithms=["RS256"])
    await refused(verifier, sign(EC_KEY, "ec-1", "ES256"))


async def test_a_token_whose_alg_differs_from_its_keys_alg_is_refused(
    make_verifier: MakeVerifier,
) -> None:
    # rsa-1 declares alg RS256: the same RSA key signing PS256 must not pass.
    await refused(make_verifier(), sign(RSA_KEY, "rsa-1", "PS256"))


async def test_a_key_without_alg_verifies_any_allowed_alg_of_its_type(
    jwks: JWKSServer, make_verifier: MakeVerifier
) -> None:
    jwks.document = {"keys": [public_jwk(RSA_KEY, "rsa-1")]}
    verifier = make_verifier()
    assert await verifier.principal(sign(RSA_KEY, "rsa-1", "PS256")) == "user-42"
    assert await verifier.principal(sign(RSA_KEY, "rsa-1", "RS256")) == "user-42"


async def test_a_key_of_the_wrong_type_for_the_alg_is_refused(
    jwks: JWKSServer, make_verifier: MakeVerifier
) -> None:
    jwks.document = {"keys": [public_jwk(RSA_KEY, "shared")]}
    await refused(make_verifier(), sign(EC_KEY, "shared", "ES256"))


async def test_an_unknown_kid_refetches_once_then_is_refused(
    jwks: JWKSServer, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier(min_refresh_seconds=0.5)
    await verifier.principal(sign(RSA_KEY, "rsa-1"))
    assert jwks.hits == 1
    await asyncio.sleep(0.6)
    message = await refused(verifier, sign(RSA_KEY, "no-such-kid"))
    assert message == "The token is not signed by a known key."
    assert jwks.hits == 2
    await refused(verifier, sign(RSA_KEY, "another-random-kid"))
    assert jwks.hits == 2, "a second unknown kid within min_refresh_seconds must not refetch"


async def test_a_key_rotated_in_after_the_first_fetch_is_accepted(
    jwks: JWKSServer, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier(min_refresh_seconds=0.2)
    await verifier.principal(sign(RSA_KEY, "rsa-1"))
    jwks.document["keys"].append(public_jwk(ROTATED_KEY, "rsa-2", "RS256"))
    await asyncio.sleep(0.3)
    assert await verifier.principal(sign(ROTATED_KEY, "rsa-2", sub="rotated")) == "rotated"
    assert jwks.hits == 2


async def test_concurrent_callers_share_one_fetch(
    jwks: JWKSServer, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier()
    token = sign(RSA_KEY, "rsa-1")
    results = await asyncio.gather(*(verifier.principal(token) for _ in range(20)))
    assert results == ["user-42"] * 20
    assert jwks.hits == 1


async def test_the_cached_keys_are_used_until_they_expire(
    jwks: JWKSServer, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier(cache_seconds=0.3, min_refresh_seconds=0)
    token = sign(RSA_KEY, "rsa-1")
    await verifier.principal(token)
    await verifier.principal(token)
    assert jwks.hits == 1
    await asyncio.sleep(0.4)
    await verifier.principal(token)
    assert jwks.hits == 2


async def test_a_failed_refetch_keeps_the_cached_keys(
    jwks: JWKSServer, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier(cache_seconds=0, min_refresh_seconds=0)
    token = sign(RSA_KEY, "rsa-1")
    await verifier.principal(token)
    jwks.status = 500
    assert await verifier.principal(token) == "user-42"
    assert jwks.hits == 2


async def test_a_signature_by_a_key_not_in_the_jwks_is_refused(
    make_verifier: MakeVerifier,
) -> None:
    message = await refused(make_verifier(), sign(STRANGER_KEY, "rsa-1"))
    assert message == "The token is not signed by a known key."


async def test_a_token_without_kid_uses_the_only_key(
    jwks: JWKSServer, make_verifier: MakeVerifier
) -> None:
    jwks.document = {"keys": [public_jwk(RSA_KEY, None, "RS256")]}
    assert await make_verifier().principal(sign(RSA_KEY, None)) == "user-42"


async def test_a_token_without_kid_is_refused_when_several_keys(
    make_verifier: MakeVerifier,
) -> None:
    await refused(make_verifier(), sign(RSA_KEY, None))


async def test_keys_pyjwt_cannot_load_are_skipped(
    jwks: JWKSServer, make_verifier: MakeVerifier
) -> None:
    jwks.document = {
        "keys": [
            {"kty": "XYZ", "kid": "alien"},
            {"kty": "EC", "crv": "P-999", "kid": "odd-curve", "x": "AA", "y": "AA"},
            {"kty": "RSA", "kid": "broken"},
            {"kty": "oct", "kid": "rsa-1", "k": b64url(b"a shared secret")},
            "not even an object",
            public_jwk(RSA_KEY, "rsa-1", "RS256"),
        ]
    }
    assert await make_verifier().principal(sign(RSA_KEY, "rsa-1")) == "user-42"


async def test_a_jwks_with_no_usable_key_refuses_tokens(
    jwks: JWKSServer, make_verifier: MakeVerifier
) -> None:
    jwks.document = {"keys": [{"kty": "XYZ", "kid": "rsa-1"}]}
    await refused(make_verifier(), sign(RSA_KEY, "rsa-1"))


@pytest.mark.parametrize("token", MALFORMED)
async def test_a_malformed_token_is_refused(make_verifier: MakeVerifier, token: str) -> None:
    await refused(make_verifier(), token)


async def test_no_refusal_message_quotes_the_token(
    jwks: JWKSServer, make_verifier: MakeVerifier
) -> None:
    # `refused` asserts that neither the token nor any of its segments is in the message.
    verifier = make_verifier(min_refresh_seconds=0)
    now = int(time.time())
    tokens = [
        *MALFORMED,
        sign(RSA_KEY, "rsa-1", exp=now - 3600),
        sign(RSA_KEY, "rsa-1", aud="x"),
        sign(RSA_KEY, "rsa-1", iss="x"),
        sign(RSA_KEY, "rsa-1", sub=None),
        sign(RSA_KEY, "kid-that-does-not-exist"),
        sign(STRANGER_KEY, "rsa-1"),
        hmac_confusion_token(),
        unsigned({"alg": "none"}, claims()) + ".",
    ]
    messages = {await refused(verifier, token) for token in tokens}
    assert all(message.endswith(".") and len(message) < 80 for message in messages)


async def test_the_jwks_file_mode_never_opens_a_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(*args: object) -> None:
        raise AssertionError("the JWKS file mode must not use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket.socket, "connect_ex", no_network)
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(default_jwks()))
    verifier = JWTVerifier(
        jwks_url=None, jwks_file=path, issuer=ISSUER, audience=AUDIENCE, algorithms=["RS256"]
    )
    try:
        assert await verifier.principal(sign(RSA_KEY, "rsa-1")) == "user-42"
        await refused(verifier, sign(ROTATED_KEY, "rsa-2"))
        path.write_text(json.dumps({"keys": [public_jwk(ROTATED_KEY, "rsa-2", "RS256")]}))
        os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000_000))
        assert await verifier.principal(sign(ROTATED_KEY, "rsa-2")) == "user-42"
        await refused(verifier, sign(RSA_KEY, "rsa-1"))
    finally:
        await verifier.aclose()


async def test_a_missing_jwks_file_is_unavailable(tmp_path: Path) -> None:
    verifier = JWTVerifier(
        jwks_url=None,
        jwks_file=tmp_path / "absent.json",
        issuer=ISSUER,
        audience=AUDIENCE,
        algorithms=["RS256"],
    )
    with pytest.raises(Unavailable):
        await verifier.principal(sign(RSA_KEY, "rsa-1"))


async def test_an_unreachable_jwks_with_nothing_cached_is_unavailable(
    make_verifier: MakeVerifier,
) -> None:
    verifier = make_verifier(jwks_url=f"http://127.0.0.1:{free_port()}/jwks.json", http_timeout=2)
    with pytest.raises(Unavailable) as caught:
        await verifier.principal(sign(RSA_KEY, "rsa-1"))
    assert caught.value.status == 503
    assert caught.value.message == "The identity provider's keys (JWKS) cannot be fetched."


@pytest.mark.parametrize(
    ("status", "raw"), [(502, None), (200, b"<html>down</html>"), (200, b"[]")]
)
async def test_a_bad_jwks_response_with_nothing_cached_is_unavailable(
    jwks: JWKSServer, make_verifier: MakeVerifier, status: int, raw: bytes | None
) -> None:
    jwks.status, jwks.raw = status, raw
    with pytest.raises(Unavailable):
        await make_verifier().principal(sign(RSA_KEY, "rsa-1"))


@pytest.mark.parametrize(
    "algorithms", [["none"], ["HS256"], ["RS256", "HS512"], ["hs384"], [], ["RS999"]]
)
def test_the_constructor_refuses_hmac_none_and_unknown_algorithms(algorithms: list[str]) -> None:
    with pytest.raises(ValueError, match="lgorithm"):
        JWTVerifier(
            jwks_url="https://idp.example.test/jwks.json",
            jwks_file=None,
            issuer=ISSUER,
            audience=AUDIENCE,
            algorithms=algorithms,
        )


@pytest.mark.parametrize(
    ("url", "path"),
    [(None, None), ("https://idp.example.test/jwks.json", Path("jwks.json")), ("file:///x", None)],
)
def test_the_constructor_wants_exactly_one_http_or_file_source(
    url: str | None, path: Path | None
) -> None:
    with pytest.raises(ValueError, match="jwks_url"):
        JWTVerifier(
            jwks_url=url, jwks_file=path, issuer=ISSUER, audience=AUDIENCE, algorithms=["RS256"]
        )
