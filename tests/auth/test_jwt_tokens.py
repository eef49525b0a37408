"""JWTVerifier's reading of a token against a real JWKS served over loopback HTTP: signatures,
claims, algorithm confusion, malformed tokens, refusal messages that never quote the token,
and the constructor's own refusals."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from auth.jwt_tokens import JWTVerifier
from tests.auth.conftest import MakeVerifier, refused
from tests.jwks import (
    AUDIENCE,
    EC_KEY,
    ISSUER,
    RSA_KEY,
    STRANGER_KEY,
    JWKSServer,
    b64url,
    claims,
    hmac_confusion_token,
    public_jwk,
    sign,
    unsigned,
)

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
