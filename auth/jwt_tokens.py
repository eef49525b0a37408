"""Verifies `Authorization: Bearer <JWT>` tokens against the identity provider's public keys (JWKS).

The keys come from a URL (cached; an unknown kid refetches, at most every few seconds) or a local
file. While the URL cannot be fetched, the cached keys serve for a bounded stale life only: after
it a token is refused with 503 (it may be valid, but its key may also have been withdrawn, and a
withdrawn key must not stay good for as long as the provider is unreachable). Only asymmetric
algorithms are accepted, so a token can never pick HMAC keyed with a public
key (algorithm confusion), and no failure message ever repeats any part of the token.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
from jwt.algorithms import get_default_algorithms
from jwt.exceptions import MissingCryptographyError

from graphs.errors import Unauthenticated, Unavailable

logger = logging.getLogger(__name__)

CHALLENGE = 'Bearer realm="graphgate", error="invalid_token"'
NO_KEYS = "The identity provider's keys (JWKS) cannot be fetched."
TOO_OLD = (
    "The identity provider's keys (JWKS) cannot be fetched, and the cached ones are too old "
    "to trust (JWT_JWKS_MAX_STALE_SECONDS)."
)
UNKNOWN_KEY = "The token is not signed by a known key."
# How long readiness waits for a due JWKS refetch: well inside a probe's timeout (3 s in the
# chart), while the fetch itself may take JWT's HTTP timeout.
PROBE_WAIT_SECONDS = 1.0
MALFORMED = "The token is malformed."

# First match wins: InvalidSignatureError is a DecodeError, so it comes before it.
_REASONS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "The token has expired."),
    (jwt.ImmatureSignatureError, "The token is not valid yet."),
    (jwt.InvalidAudienceError, "The token's audience is not accepted."),
    (jwt.InvalidIssuerError, "The token's issuer is not accepted."),
    (jwt.MissingRequiredClaimError, "The token lacks a required claim (exp, iss or aud)."),
    (jwt.InvalidAlgorithmError, "The token's signing algorithm is not accepted."),
    (jwt.InvalidSignatureError, UNKNOWN_KEY),
    (jwt.InvalidKeyError, UNKNOWN_KEY),
    (jwt.DecodeError, MALFORMED),
)


def _outcome_unread(lookup: asyncio.Future[Any]) -> None:
    """A background refetch's outcome is in the cache; its exception is read so that asyncio
    does not report it as lost."""
    if not lookup.cancelled():
        lookup.exception()


def _rejected(message: str) -> Unauthenticated:
    return Unauthenticated(message, challenge=CHALLENGE)


def _check_algorithms(algorithms: Sequence[str]) -> None:
    if isinstance(algorithms, str) or not algorithms:
        raise ValueError("algorithms must be a non-empty list of JWS algorithm names.")
    known = get_default_algorithms()
    for name in algorithms:
        if name.lower() == "none" or name.upper().startswith("HS"):
            raise ValueError(f"Algorithm {name!r} is not allowed: a JWKS holds public keys.")
        if name not in known:
            raise ValueError(f"Algorithm {name!r} is not supported by PyJWT.")


@dataclass(frozen=True)
class _Key:
    jwk: jwt.PyJWK
    data: dict[str, Any]

    def for_alg(self, alg: str) -> jwt.PyJWK | None:
        """This key bound to `alg`, or None when the key does not fit that algorithm."""
        if self.jwk.algorithm_name == alg:
            return self.jwk
        if "alg" in self.data:  # the key names its algorithm: the token must use that one
            return None
        try:  # no "alg": PyJWT guessed one from kty (RSA -> RS256); the token may use PS256
            return jwt.PyJWK(self.data, algorithm=alg)
        except jwt.PyJWTError:
            return None


def _signing_keys(document: Any) -> list[_Key]:
    """The signature keys of a JWKS document that PyJWT can load; other keys are skipped."""
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError("not a JWKS document")
    keys = []
    for data in entries:
        if not isinstance(data, dict) or data.get("kty") == "oct" or data.get("use") == "enc":
            continue  # symmetric or encryption keys never verify a signature here
        try:
            keys.append(_Key(jwt.PyJWK(data), data))
        except MissingCryptographyError:
            raise
        except jwt.PyJWTError:
            continue  # unsupported kty or curve, broken key material
    return keys


def _pick(keys: list[_Key], kid: str | None) -> _Key | None:
    if kid is None:
        return keys[0] if len(keys) == 1 else None
    return next((key for key in keys if key.jwk.key_id == kid), None)


class JWTVerifier:
    """The principal of a bearer JWT signed by one of the identity provider's keys."""

    def __init__(
        self,
        *,
        jwks_url: str | None,
        jwks_file: Path | None,
        issuer: str,
        audience: str,
        algorithms: Sequence[str],
        principal_claim: str = "sub",
        leeway: float = 30.0,
        cache_seconds: float = 300.0,
        max_stale_seconds: float = 3600.0,
        min_refresh_seconds: float = 10.0,
        http_timeout: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if (jwks_url is None) == (jwks_file is None):
            raise ValueError("Give exactly one of jwks_url and jwks_file.")
        if jwks_url is not None and not jwks_url.startswith(("http://", "https://")):
            raise ValueError("jwks_url must be an http(s) URL.")
        if not issuer or not audience or not principal_claim:
            raise ValueError("issuer, audience and principal_claim must not be empty.")
        _check_algorithms(algorithms)
        self._url, self._file = jwks_url, jwks_file
        self._issuer, self._audience = issuer, audience
        self._algorithms = tuple(algorithms)
        self._principal_claim = principal_claim
        self._leeway, self._cache_seconds = leeway, cache_seconds
        self._max_stale, self._monotonic = max_stale_seconds, monotonic
        self._min_refresh, self._http_timeout = min_refresh_seconds, http_timeout
        self._keys: list[_Key] | None = None
        self._fetched_at = -float("inf")  # monotonic time of the last successful fetch
        self._tried_at = -float("inf")  # ... and of the last attempt, successful or not
        self._file_version: tuple[int, int] | None = (-1, -1)  # not read yet
        self._lock = asyncio.Lock()
        self._client: httpx.AsyncClient | None = None

    async def principal(self, token: str) -> str:
        """The principal claim of a valid token; raises Unauthenticated otherwise."""
        return self.principal_of(await self.claims(token))

    def principal_of(self, claims: dict[str, Any]) -> str:
        """The principal claim of a verified token's claims; Unauthenticated if it has none."""
        principal = claims.get(self._principal_claim)
        if not isinstance(principal, str) or not principal.strip():
            raise _rejected(f"The token has no usable {self._principal_claim!r} claim.")
        return principal

    async def claims(self, token: str) -> dict[str, Any]:
        """The claims of a valid token; raises Unauthenticated otherwise."""
        alg, kid = self._header(token)
        key = await self._key(kid, alg)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as error:
            reason = next((text for kind, text in _REASONS if isinstance(error, kind)), None)
            raise _rejected(reason or "The token is not valid.") from None
        return claims

    async def key_problem(self) -> str | None:
        """Why no token can be verified now (no keys, or keys too old), for readiness. A due
        refetch goes on in the background: the probe waits for it `PROBE_WAIT_SECONDS` at most
        (a provider slower than the probe's timeout would otherwise fail every probe), then
        answers from the cache as it is."""
        lookup = asyncio.ensure_future(self._current_keys(refresh=False))
        done, _ = await asyncio.wait({lookup}, timeout=PROBE_WAIT_SECONDS)
        if not done:
            lookup.add_done_callback(_outcome_unread)
            return self._cache_problem()
        try:
            lookup.result()
        except Unavailable as exc:
            return exc.message
        return None

    def _cache_problem(self) -> str | None:
        if self._keys is None:
            return NO_KEYS
        if self._monotonic() - self._fetched_at >= self._cache_seconds + self._max_stale:
            return TOO_OLD
        return None

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def _header(self, token: str) -> tuple[str, str | None]:
        """The token's alg (from the allow-list) and kid; the signature is checked later."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _rejected(MALFORMED) from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise _rejected("The token's signing algorithm is not accepted.")
        return alg, header.get("kid")  # PyJWT has checked that a kid is a string

    async def _key(self, kid: str | None, alg: str) -> jwt.PyJWK:
        key = _pick(await self._current_keys(refresh=False), kid)
        if key is None and self._url is not None:  # maybe a key the provider rotated in
            key = _pick(await self._current_keys(refresh=True), kid)
        jwk = key.for_alg(alg) if key is not None else None
        if jwk is None:
            raise _rejected(UNKNOWN_KEY)
        return jwk

    async def _current_keys(self, *, refresh: bool) -> list[_Key]:
        if self._file is not None:
            return self._file_keys(self._file)
        fresh = self._monotonic() - self._fetched_at < self._cache_seconds
        if self._keys is not None and fresh and not refresh:
            return self._keys  # no lock: a slow refetch for an unknown kid stalls nobody else
        async with self._lock:  # concurrent callers share one fetch
            now = self._monotonic()
            stale = refresh or now - self._fetched_at >= self._cache_seconds
            if stale and now - self._tried_at >= self._min_refresh:
                self._tried_at = now
                await self._fetch()
            if self._keys is None:
                raise Unavailable(NO_KEYS, retry_after=self._min_refresh)
            if self._monotonic() - self._fetched_at >= self._cache_seconds + self._max_stale:
                raise Unavailable(TOO_OLD, retry_after=self._min_refresh)
            return self._keys

    async def _fetch(self) -> None:
        """Replaces the cached keys with the provider's; on any failure the old ones stay."""
        assert self._url is not None
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._http_timeout)
        try:
            response = await self._client.get(self._url)
            if response.status_code != 200:
                raise ValueError(f"HTTP {response.status_code}")
            keys = _signing_keys(response.json())
        except (httpx.HTTPError, ValueError) as error:
            logger.warning("fetching the JWKS from %s failed: %s", self._url, error)
            return
        self._keys, self._fetched_at = keys, self._monotonic()

    def _file_keys(self, path: Path) -> list[_Key]:
        """The keys of the JWKS file, re-read when it changes; a broken file keeps the old keys."""
        version = _file_version(path)
        if version != self._file_version:  # a broken version is read (and logged) only once
            self._file_version = version
            try:
                self._keys = _signing_keys(json.loads(path.read_bytes()))
            except (OSError, ValueError) as error:
                logger.warning("reading the JWKS file %s failed: %s", path, error)
        if self._keys is None:
            raise Unavailable(NO_KEYS)
        return self._keys


def _file_version(path: Path) -> tuple[int, int] | None:
    """(mtime, size): size too, as a rewrite can land within the filesystem's mtime tick."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size
