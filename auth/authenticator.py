"""The principal of a request, by `AUTH_MODE`: an API key, a JWT, a header set by an
authenticating gateway, or nobody (`anonymous`, development). Each also says whether the
principal is an admin (the operator console, `/admin/`): a key made with `--admin`, a token
whose `JWT_ROLES_CLAIM` holds `ADMIN_ROLE`, a gateway's `AUTH_ROLES_HEADER` that names it, or,
with no authentication, a client on this machine's loopback.
"""

from __future__ import annotations

import hmac
import ipaddress
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from starlette.datastructures import Headers

from auth.api_keys import KeysFile, KeyStore, key_hash
from auth.redis_key_store import redis_key_store
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
    async def authenticate(self, headers: Headers, client: str | None = None) -> Principal:
        """The principal of a request with `headers` from the `client` address."""
        ...

    async def problem(self) -> str | None:
        """Why no credential can be checked now (for readiness), if so."""
        ...

    async def aclose(self) -> None: ...


def bearer_token(headers: Headers) -> str | None:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def holds_role(value: Any, role: str) -> bool:
    """Whether a roles claim or header names `role`: a list of names, or one string of names
    separated by spaces or commas (as OAuth's `scope` and most gateways write them)."""
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    return isinstance(value, list) and role in value


LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def claim_at(claims: dict[str, Any], name: str) -> Any:
    """A claim by its name, else by a dotted path into nested claims (Keycloak's
    `realm_access.roles`); names with dots of their own (Auth0's URL claims) match first."""
    if name in claims:
        return claims[name]
    found: Any = claims
    for part in name.split("."):
        found = found.get(part) if isinstance(found, dict) else None
    return found


def is_loopback(client: str | None) -> bool:
    try:
        return client is not None and ipaddress.ip_address(client).is_loopback
    except ValueError:
        return False


def named_local(headers: Headers) -> bool:
    """Whether the request names this machine as its host: a page that rebinds its own name to
    127.0.0.1 (DNS rebinding) reaches the loopback under its own name."""
    host = headers.get("host", "")
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return name.lower() in LOCAL_HOSTS


def bears_token(headers: Headers, expected: str) -> bool:
    """Whether the request's bearer token is `expected` (never when that is empty), compared in
    constant time."""
    token = bearer_token(headers) or ""
    return bool(expected) and hmac.compare_digest(token.encode(), expected.encode())


class Anonymous:
    """`AUTH_MODE=none`: everyone is `anonymous`; in development `X-User-Id` names the
    principal, so that local users and tests keep separate sessions and limits. Outside
    production a client on the loopback that names this machine as its host (`make run`'s
    browser) is an admin; nobody else is."""

    def __init__(self, *, trust_user_header: bool) -> None:
        self.trust_user_header = trust_user_header

    async def authenticate(self, headers: Headers, client: str | None = None) -> Principal:
        admin = self.trust_user_header and is_loopback(client) and named_local(headers)
        user = headers.get(USER_HEADER) if self.trust_user_header else None
        if user is None:
            return Principal(ANONYMOUS, admin=admin)
        if not is_principal_name(user):
            raise InvalidInput(f"X-User-Id must be {PRINCIPAL_RULE}.")
        return Principal(user, admin=admin)

    async def problem(self) -> str | None:
        return None

    async def aclose(self) -> None:
        return None


class ApiKeys:
    """`AUTH_MODE=api_key`: `Authorization: Bearer <key>` or `X-API-Key: <key>`, looked up by
    its hash in each store in turn."""

    def __init__(self, stores: Sequence[KeyStore]) -> None:
        self.stores = stores

    async def authenticate(self, headers: Headers, client: str | None = None) -> Principal:
        key = bearer_token(headers) or headers.get(API_KEY_HEADER)
        if not key:
            raise Unauthenticated(
                "An API key is required: send `Authorization: Bearer <key>` or `X-API-Key`."
            )
        hash, now = key_hash(key), time.time()
        for store in self.stores:
            record = await store.find(hash)
            if record is not None and record.usable(now):
                await store.used(record, now)
                return Principal(record.principal, record.quota, record.key_id, record.admin)
        raise Unauthenticated("The API key is not valid.", challenge=INVALID_TOKEN)

    async def problem(self) -> str | None:
        return None

    async def aclose(self) -> None:
        return None


class JWTBearer:
    """`AUTH_MODE=jwt`: a JWT verified against the identity provider's JWKS; an admin when its
    `roles_claim` names `admin_role`."""

    def __init__(self, verifier: JWTVerifier, roles_claim: str, admin_role: str) -> None:
        self.verifier = verifier
        self.roles_claim, self.admin_role = roles_claim, admin_role

    async def authenticate(self, headers: Headers, client: str | None = None) -> Principal:
        token = bearer_token(headers)
        if token is None:
            raise Unauthenticated("A bearer token is required: send `Authorization: Bearer <JWT>`.")
        claims = await self.verifier.claims(token)
        name = self.verifier.principal_of(claims)
        if not is_principal_name(name):
            raise Unauthenticated(
                f"The token's principal claim is not {PRINCIPAL_RULE}.", challenge=INVALID_TOKEN
            )
        roles = claim_at(claims, self.roles_claim)
        return Principal(name, admin=holds_role(roles, self.admin_role))

    async def problem(self) -> str | None:
        return await self.verifier.key_problem()

    async def aclose(self) -> None:
        await self.verifier.aclose()


class TrustedHeader:
    """`AUTH_MODE=trusted_header`: the gateway in front authenticated the caller and names it in
    `AUTH_HEADER`, and its roles in `AUTH_ROLES_HEADER` (both of which it must strip from what
    clients send)."""

    def __init__(self, header: str, roles_header: str, admin_role: str) -> None:
        self.header = header.lower()
        self.roles_header, self.admin_role = roles_header.lower(), admin_role  # "": no admins

    async def authenticate(self, headers: Headers, client: str | None = None) -> Principal:
        # Exactly one: a gateway that appends its header instead of replacing the client's
        # would otherwise let the client's copy, which comes first, win.
        values = headers.getlist(self.header)
        if len(values) != 1 or not values[0]:
            raise Unauthenticated("This request did not come through the authenticating gateway.")
        name = values[0]
        if not is_principal_name(name):
            raise Unauthenticated(f"The gateway's principal is not {PRINCIPAL_RULE}.")
        # Every copy must name the role: a client's own copy cannot make it an admin.
        roles = headers.getlist(self.roles_header) if self.roles_header else []
        admin = bool(roles) and all(holds_role(value, self.admin_role) for value in roles)
        return Principal(name, admin=admin)

    async def problem(self) -> str | None:
        return None

    async def aclose(self) -> None:
        return None


def key_stores(settings: Settings, redis: RedisClient | None) -> list[KeyStore]:
    stores: list[KeyStore] = []
    if settings.api_keys_file is not None:
        stores.append(KeysFile(settings.api_keys_file))
    if (in_redis := redis_key_store(settings, redis)) is not None:
        stores.append(in_redis)
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
            ),
            settings.jwt_roles_claim,
            settings.admin_role,
        )
    if settings.auth_mode == "trusted_header":
        return TrustedHeader(settings.auth_header, settings.auth_roles_header, settings.admin_role)
    return Anonymous(trust_user_header=settings.trusts_user_header)
