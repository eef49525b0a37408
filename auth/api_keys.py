"""API keys: high-entropy random strings that graphgate stores only as SHA-256 hashes.

A presented key is hashed and looked up by its hash: a stolen store or log holds no usable key.
(A slow password hash buys nothing for 256-bit random keys, and SHA-256 keeps the lookup a
dictionary or Redis read.) Two stores: a keys file for small deployments and embedded mode,
re-read when it changes, and Redis for everything else, where a revoked key is gone for every
worker and pod at its next request.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from redis.typing import EncodableT, FieldT

from graphs.identity import PRINCIPAL_RULE, Quota, is_principal_name
from graphs.store.keys import RedisKeys
from graphs.store.redis_client import REDIS_FAILURES, RedisClient, store_unavailable

KEY_PREFIX = "gg_"
SHA256_HEX = frozenset("0123456789abcdef")
QUOTA_FIELDS = {"rate_limit_max": int, "tokens_per_minute": int, "daily_budget_usd": float}

logger = logging.getLogger(__name__)


def new_key() -> str:
    """A new API key: 256 random bits, URL-safe, with a prefix secret scanners recognise."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def is_key_hash(text: str) -> bool:
    return len(text) == 64 and set(text) <= SHA256_HEX


@dataclass(frozen=True)
class KeyRecord:
    """What graphgate keeps of a key: never the key, only its hash and what it grants."""

    principal: str
    hash: str
    quota: Quota = field(default_factory=Quota)
    created: float = 0.0
    expires: float | None = None

    @property
    def key_id(self) -> str:
        """A short public name of the key (for listing, revoking and logs)."""
        return self.hash[:12]

    def usable(self, now: float) -> bool:
        return self.expires is None or now < self.expires


class KeyStore(Protocol):
    async def find(self, hash: str) -> KeyRecord | None: ...


def quota_from(fields: dict[str, str]) -> Quota:
    """A quota from `name=value` texts (file options or Redis hash fields); ValueError if bad."""
    values = {name: kind(fields[name]) for name, kind in QUOTA_FIELDS.items() if fields.get(name)}
    if any(value < 0 for value in values.values()):
        raise ValueError("quota values cannot be negative")
    return Quota(**values)


def quota_fields(quota: Quota) -> dict[str, str]:
    return {
        name: str(getattr(quota, name)) for name in QUOTA_FIELDS if getattr(quota, name) is not None
    }


def parse_key_line(line: str) -> KeyRecord | None:
    """One line of a keys file: `<principal> <sha256-hex> [rate_limit_max=N ...]`; None for a
    blank or comment line; ValueError for a malformed one."""
    words = line.split("#", 1)[0].split()
    if not words:
        return None
    if len(words) < 2 or not is_principal_name(words[0]) or not is_key_hash(words[1].lower()):
        raise ValueError(
            f"expected '<principal> <sha256-hex>' with a principal of {PRINCIPAL_RULE}"
        )
    options = dict(word.partition("=")[::2] for word in words[2:])
    unknown = set(options) - set(QUOTA_FIELDS) - {"expires"}
    if unknown:
        raise ValueError(f"unknown option(s) {sorted(unknown)}")
    expires = float(options["expires"]) if options.get("expires") else None
    return KeyRecord(words[0], words[1].lower(), quota_from(options), expires=expires)


def key_line(record: KeyRecord) -> str:
    options = quota_fields(record.quota)
    if record.expires is not None:
        options["expires"] = f"{record.expires:.0f}"
    return " ".join([record.principal, record.hash, *(f"{k}={v}" for k, v in options.items())])


def parse_keys_file(path: Path) -> tuple[dict[str, KeyRecord], list[str]]:
    """The good records of a keys file by hash, and what is wrong with each bad line."""
    records: dict[str, KeyRecord] = {}
    problems: list[str] = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        try:
            record = parse_key_line(line)
        except ValueError as exc:
            problems.append(f"{path}, line {number}: {exc}")
            continue
        if record is not None:
            records[record.hash] = record
    return records, problems


def read_keys_file(path: Path) -> dict[str, KeyRecord]:
    """The records of a keys file by hash; ValueError naming the first line that is wrong."""
    records, problems = parse_keys_file(path)
    if problems:
        raise ValueError(problems[0])
    return records


class KeysFile:
    """`API_KEYS_FILE`, re-read whenever its modification time or size changes. A bad line is
    skipped (and logged once), so removing a key always takes effect; an unreadable file
    authenticates nobody until it is readable again."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._records: dict[str, KeyRecord] = {}
        self._refresh()

    def _refresh(self) -> None:
        try:
            stat = self.path.stat()
        except OSError as exc:
            stamp = None
            if self._stamp is not None:
                logger.error("API_KEYS_FILE unreadable, no key is accepted: %s", exc)
            self._records, self._stamp = {}, stamp
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            self._records, problems = parse_keys_file(self.path)
        except OSError as exc:
            logger.error("API_KEYS_FILE unreadable, no key is accepted: %s", exc)
            self._records, problems = {}, []
        for problem in problems:
            logger.error("API_KEYS_FILE line skipped: %s", problem)

    async def find(self, hash: str) -> KeyRecord | None:
        self._refresh()
        return self._records.get(hash)


def text_of(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisKeyStore:
    """A hash per key (`<prefix>apikey:<sha256>`) that expires with the key, and an index of key
    ids (`<prefix>apikeys`) for listing and revoking. Single-key commands only, so the layout
    holds on Redis Cluster."""

    def __init__(self, redis: RedisClient, prefix: str) -> None:
        self._redis = redis
        self._keys = RedisKeys(prefix)

    def _key(self, hash: str) -> str:
        return self._keys.api_key(hash)

    @property
    def _index(self) -> str:
        return self._keys.api_key_index()

    async def find(self, hash: str) -> KeyRecord | None:
        try:
            fields = await self._redis.hgetall(self._key(hash))
        except REDIS_FAILURES as exc:
            # Authentication runs before the routes' Redis error handler: say 503 here.
            raise store_unavailable(exc, "The key store") from None
        if not fields:
            return None
        text = {text_of(name): text_of(value) for name, value in fields.items()}
        try:
            if not is_principal_name(text.get("principal", "")):
                raise ValueError("no valid principal")
            expires = float(text["expires"]) if text.get("expires") else None
            created = float(text.get("created") or 0)
            return KeyRecord(text["principal"], hash, quota_from(text), created, expires)
        except ValueError as exc:
            logger.error("API key record %s is corrupt (%s); refusing it", hash[:12], exc)
            return None

    async def add(self, record: KeyRecord) -> None:
        fields: dict[FieldT, EncodableT] = {
            "principal": record.principal,
            "created": f"{record.created:.0f}",
        }
        fields.update(quota_fields(record.quota))
        if record.expires is not None:
            fields["expires"] = f"{record.expires:.0f}"
        await self._redis.hset(self._key(record.hash), mapping=fields)
        if record.expires is not None:
            await self._redis.expireat(self._key(record.hash), int(record.expires) + 1)
        await self._redis.hset(self._index, record.key_id, record.hash)

    async def records(self) -> list[KeyRecord]:
        """Every live key; index entries of keys that expired are dropped on the way."""
        found = []
        for key_id, hash in (await self._redis.hgetall(self._index)).items():
            record = await self.find(text_of(hash))
            if record is None or not record.usable(time.time()):
                await self._redis.hdel(self._index, key_id)
            else:
                found.append(record)
        return found

    async def revoke(self, key_id: str) -> bool:
        hash = await self._redis.hget(self._index, key_id)
        if hash is None:
            return False
        # The key record first: from this command on the key no longer authenticates.
        await self._redis.delete(self._key(text_of(hash)))
        await self._redis.hdel(self._index, key_id)
        return True
