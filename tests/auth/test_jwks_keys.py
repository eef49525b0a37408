"""JWTVerifier's key set against a real JWKS served over loopback HTTP: key ids, rotation,
the refetch rate limit and cache, keys it cannot use, the file mode, and an unreachable or
broken provider."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from pathlib import Path

import pytest

from auth.jwt_tokens import JWTVerifier
from graphs.errors import Unavailable
from scripts.processes import free_port
from tests.auth.conftest import MakeVerifier, refused
from tests.jwks import (
    AUDIENCE,
    ISSUER,
    ROTATED_KEY,
    RSA_KEY,
    STRANGER_KEY,
    JWKSServer,
    b64url,
    default_jwks,
    public_jwk,
    sign,
)


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
