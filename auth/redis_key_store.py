"""API keys in Redis: a hash per key (`<prefix>apikey:<sha256>`) that expires with the key, and
an index of key ids (`<prefix>apikeys`) for listing, changing and revoking. Every request reads
its key's hash, so a change or a revocation holds for every worker and pod at its next request.
Single-key commands and scripts only, so the layout holds on Redis Cluster.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from redis.typing import EncodableT, FieldT

from auth.api_keys import ADMIN_ROLE, QUOTA_FIELDS, KeyRecord, quota_fields, quota_from
from graphs.identity import is_principal_name
from graphs.settings import Settings
from graphs.store.keys import RedisKeys
from graphs.store.redis_client import REDIS_FAILURES, RedisClient, store_unavailable

logger = logging.getLogger(__name__)

# Change a key's hash only while it exists: a revocation that ran first must not be undone by
# a write that recreates its hash. ARGV: the number of fields to delete, those fields, then
# field/value pairs to set. Returns whether the key existed.
UPDATE_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local cleared = tonumber(ARGV[1])
for i = 2, cleared + 1 do redis.call('HDEL', KEYS[1], ARGV[i]) end
for i = cleared + 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
return 1
"""


def text_of(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def record_of(hash: str, text: dict[str, str]) -> KeyRecord:
    """A key's record from its hash's fields; ValueError when they are not one."""
    if not is_principal_name(text.get("principal", "")):
        raise ValueError("no valid principal")
    return KeyRecord(
        text["principal"],
        hash,
        quota_from(text),
        created=float(text.get("created") or 0),
        expires=float(text["expires"]) if text.get("expires") else None,
        admin=text.get("role") == ADMIN_ROLE,
        last_used=float(text["last_used"]) if text.get("last_used") else None,
    )


class RedisKeyStore:
    def __init__(self, redis: RedisClient, prefix: str, last_used_resolution: float = 60) -> None:
        self._redis = redis
        self._keys = RedisKeys(prefix)
        self._update = redis.register_script(UPDATE_LUA)
        self._resolution = last_used_resolution

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
        return self._parsed(hash, fields)

    def _parsed(self, hash: str, fields: dict[Any, Any]) -> KeyRecord | None:
        if not fields:
            return None
        try:
            return record_of(hash, {text_of(k): text_of(v) for k, v in fields.items()})
        except ValueError as exc:
            logger.error("API key record %s is corrupt (%s); refusing it", hash[:12], exc)
            return None

    async def used(self, record: KeyRecord, now: float) -> None:
        """Written once per `last_used_resolution` at most: a key's last use is read by people,
        and a write on every request would double the key store's load."""
        if record.last_used is not None and now - record.last_used < self._resolution:
            return
        try:
            await self._update(keys=[self._key(record.hash)], args=[0, "last_used", f"{now:.0f}"])
        except REDIS_FAILURES as exc:
            logger.warning("could not note key %s's use: %s", record.key_id, type(exc).__name__)

    async def add(self, record: KeyRecord) -> None:
        fields: dict[FieldT, EncodableT] = {
            "principal": record.principal,
            "created": f"{record.created:.0f}",
        }
        fields.update(quota_fields(record.quota))
        if record.expires is not None:
            fields["expires"] = f"{record.expires:.0f}"
        if record.admin:
            fields["role"] = ADMIN_ROLE
        # The hash and its expiry together: a key that expires is never left without one.
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._key(record.hash), mapping=fields)
            if record.expires is not None:
                pipe.expireat(self._key(record.hash), int(record.expires) + 1)
            await pipe.execute()
        await self._redis.hset(self._index, record.key_id, record.hash)

    async def records(self) -> list[KeyRecord]:
        """Every live key, read in one round trip; index entries of keys that expired are
        dropped on the way."""
        index = {
            text_of(k): text_of(v) for k, v in (await self._redis.hgetall(self._index)).items()
        }
        async with self._redis.pipeline(transaction=False) as pipe:
            for hash in index.values():
                pipe.hgetall(self._key(hash))
            hashes = await pipe.execute()
        found, gone, now = [], [], time.time()
        for (key_id, hash), fields in zip(index.items(), hashes, strict=True):
            record = self._parsed(hash, fields)
            if record is None or not record.usable(now):
                gone.append(key_id)
            else:
                found.append(record)
        if gone:
            await self._redis.hdel(self._index, *gone)
        return found

    async def record(self, key_id: str) -> KeyRecord | None:
        """The live key of this id, if any."""
        hash = await self._redis.hget(self._index, key_id)
        record = None if hash is None else await self.find(text_of(hash))
        return record if record is not None and record.usable(time.time()) else None

    async def change_quota(self, key_id: str, changes: dict[str, float | None]) -> KeyRecord | None:
        """Set the quota fields in `changes` (None: back to the server's setting), the others
        left as they are, in one script: two admins changing two fields at once both hold.
        The key as it is then; None if there is no such key."""
        record = await self.record(key_id)
        if record is None:
            return None
        unknown = set(changes) - set(QUOTA_FIELDS)
        if unknown:
            raise ValueError(f"not quota fields: {sorted(unknown)}")
        cleared = [name for name, value in changes.items() if value is None]
        pairs = [
            part
            for name, value in changes.items()
            if value is not None
            for part in (name, str(value))
        ]
        args: list[EncodableT] = [len(cleared), *cleared, *pairs]
        if not await self._update(keys=[self._key(record.hash)], args=args):
            return None
        return await self.record(key_id)

    async def revoke(self, key_id: str) -> bool:
        hash = await self._redis.hget(self._index, key_id)
        if hash is None:
            return False
        # The key record first: from this command on the key no longer authenticates.
        await self._redis.delete(self._key(text_of(hash)))
        await self._redis.hdel(self._index, key_id)
        return True


def redis_key_store(settings: Settings, redis: RedisClient | None) -> RedisKeyStore | None:
    """The key store in Redis the settings name, if there is a Redis."""
    if redis is None:
        return None
    return RedisKeyStore(redis, settings.redis_prefix, settings.key_last_used_resolution)
