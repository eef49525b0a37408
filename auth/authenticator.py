"""The principal of a request, by `AUTH_MODE`: an API key, a JWT, a header set by an
authenticating gateway, or nobody (`anonymous`, development)."""

from __future__ import annotations

import hmac
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from starlette.datastructures import Headers

from auth.api_keys import KeysFile, KeyStore, RedisKeyStore, key_hash
from graphs.errors import InvalidInput, Unauthenticated
from graphs.identity import ANONYMOUS, PRINCIPAL_RULE, Principal, is_principal_name
from graphs.settings import Settings
from graphs.store.redis_client import RedisClient

if TYPE_CHECKING:
    from auth.jwt_tokens import JWTVerifier

USER_HEADER = "x-user-id"
API_KEY_HEADER = "x-api-key"
INVALID_TOKEN = 'Bearer realm="graphgate", error="invalid_token"'


class Authenticator(Protocol):
    async def authenticate(self, headers: Headers) -> Principal: ...

    async def problem(self) -> str | None:
        """Why no credential can be checked now (for readiness), if so."""
        ...

    async def aclose(self) -> None: ...


def bearer_token(headers: Headers) -> str | None:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def bears_token(headers: Headers, expected: str) -> bool:
    """Whether the request's bearer token is `expected` (never when that is empty), compared in
    constant time."""
    token = bearer_token(headers) or ""
    return bool(expected) and hmac.compare_digest(token.encode(), expected.encode())


class Anonymous:
    """`AUTH_MODE=none`: everyone is `anonymous`; in development `X-User-Id` names the
    principal, so that local users and tests keep separate sessions and limits."""

    def __init__(self, *, trust_user_header: bool) -> None:
        self.trust_user_header = trust_user_header

    async def authenticate(self, headers: Headers) -> Principal:
        user = headers.get(USER_HEADER) if self.trust_user_header else None
        if user is None:
            return Principal(ANONYMOUS)
        if not is_principal_name(user):
            raise InvalidInput(f"X-User-Id must be {PRINCIPAL_RULE}.")
        return Principal(user)

    async def problem(self) -> str | None:
        return None

    async def aclose(self) -> None:
        return None


class ApiKeys:
    """`AUTH_MODE=api_key`: `Authorization: Bearer <key>` or `X-API-Key: <key>`, looked up by
    its hash in each store in turn."""

    def __init__(self, stores: Sequence[KeyStore]) -> None:
        self.stores = stores

    async def authenticate(self, headers: Headers) -> Principal:
        key = bearer_token(headers) or headers.get(API_KEY_HEADER)
        if not key:
            raise Unauthenticated(
                "An API key is required: send `Authorization: Bearer <key>` or `X-API-Key`."
            )
        hash = key_hash(key)
        for store in self.stores:
            record = await store.find(hash)
            if record is not None and record.usable(time.time()):
                return Principal(record.principal, record.quota, record.key_id)
        raise Unauthenticated("The API key is not valid.", challenge=INVALID_TOKEN)

    async def problem(self) -> str | None:
        return None

    async def aclose(self) -> None:
        return None


class JWTBearer:
    """`AUTH_MODE=jwt`: a JWT verified against the identity provider's JWKS."""

    def __init__(self, verifier: JWTVerifier) -> None:
        self.verifier = verifier

    async def authenticate(self, headers: Headers) -> Principal:
        token = bearer_token(headers)
        if token is None:
            raise Unauthenticated("A bearer token is required: send `Authorization: Bearer <JWT>`.")
        name = await self.verifier.principal(token)
        if not is_principal_name(name):
            raise Unauthenticated(
                f"The token's principal claim is not {PRINCIPAL_RULE}.", challenge=INVALID_TOKEN
            )
        return Principal(name)

    async def problem(self) -> str | None:
        return await self.verifier.key_problem()

    async def aclose(self) -> None:
        await self.verifier.aclose()


class TrustedHeader:
    """`AUTH_MODE=trusted_header`: the gateway in front authenticated the caller and names it in
    `AUTH_HEADER` (which it must strip from what clients send)."""

    def __init__(self, header: str) -> None:
        self.header = header.lower()

    async def authenticate(self, headers: Headers) -> Principal:
        # Exactly one: a gateway that appends its header instead of replacing the client's
        # would otherwise let the client's copy, which comes first, win.
        values = headers.getlist(self.header)
        if len(values) != 1 or not values[0]:
            raise Unauthenticated("This request did not come through the authenticating gateway.")
        name = values[0]
        if not is_principal_name(name):
            raise Unauthenticated(f"The gateway's principal is not {PRINCIPAL_RULE}.")
        return Principal(name)

    async def problem(self) -> str | None:
        return None

    async def aclose(self) -> None:
        return None


def key_stores(settings: Settings, redis: RedisClient | None) -> list[KeyStore]:
    stores: list[KeyStore] = []
    if settings.api_keys_file is not None:
        stores.append(KeysFile(settings.api_keys_file))
    if redis is not None:
        stores.append(RedisKeyStore(redis, settings.redis_prefix))
    return stores


def build_authenticator(settings: Settings, redis: RedisClient | None) -> Authenticator:
    if settings.auth_mode == "api_key":
        return ApiKeys(key_stores(settings, redis))
    if settings.auth_mode == "jwt":
        # Imported only for JWTs: PyJWT and its cryptography cost about 10 MB and 25 ms.
        from auth.jwt_tokens import JWTVerifier

        # Start-up checks (serving/startup_checks.py) have made sure both are set.
        return JWTBearer(
            JWTVerifier(
                jwks_url=settings.jwt_jwks_url,
                jwks_file=settings.jwt_jwks_file,
                issuer=settings.jwt_issuer or "",
                audience=settings.jwt_audience or "",
                algorithms=settings.jwt_algorithm_list,
                principal_claim=settings.jwt_principal_claim,
                leeway=settings.jwt_leeway,
                cache_seconds=settings.jwt_jwks_cache_seconds,
                max_stale_seconds=settings.jwt_jwks_max_stale_seconds,
            )
        )
    if settings.auth_mode == "trusted_header":
        return TrustedHeader(settings.auth_header)
    return Anonymous(trust_user_header=settings.trusts_user_header)
