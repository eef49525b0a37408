"""`/admin/keys`: list, create, change the quota of and revoke API keys, as `python -m auth`
does, for an admin. Keys live in Redis: every request reads its key's record, so a change holds
on every worker and pod at the next request. A keys file's keys are listed, never changed
here (the file is the deployment's, often a mounted secret). Each change writes one audit line
(`api/admin/audit.py`): who changed which key of whom, and how; never the key.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.admin.audit import audited
from api.caller import Admin
from auth.api_keys import KeyRecord, key_hash, new_key, parse_keys_file
from auth.redis_key_store import RedisKeyStore, redis_key_store
from graphs.errors import InvalidInput, KeyNotManaged, NotFound
from graphs.identity import PRINCIPAL_PATTERN, Quota
from graphs.service import GraphService

router = APIRouter(prefix="/admin/keys", tags=["admin"])
logger = logging.getLogger(__name__)


class QuotaBody(BaseModel):
    """A key's own limits; null (or absent): the server's setting."""

    model_config = ConfigDict(extra="forbid")

    rate_limit_max: int | None = Field(default=None, ge=0)
    tokens_per_minute: int | None = Field(default=None, ge=0)
    daily_budget_usd: float | None = Field(default=None, ge=0)

    def quota(self) -> Quota:
        return Quota(self.rate_limit_max, self.tokens_per_minute, self.daily_budget_usd)


class NewKey(QuotaBody):
    principal: str = Field(pattern=PRINCIPAL_PATTERN.pattern)
    expires_at: datetime | None = None
    admin: bool = False


class KeyView(BaseModel):
    key_id: str
    principal: str
    admin: bool
    quota: QuotaBody
    created: float | None
    expires: float | None
    last_used: float | None
    source: Literal["redis", "file"]


class CreatedKey(KeyView):
    key: str = Field(description="The key itself: shown in this answer only, never again.")


class KeyList(BaseModel):
    keys: list[KeyView]


def view(record: KeyRecord, source: Literal["redis", "file"]) -> dict[str, Any]:
    return {
        "key_id": record.key_id,
        "principal": record.principal,
        "admin": record.admin,
        "quota": vars(record.quota),
        "created": record.created or None,
        "expires": record.expires,
        "last_used": record.last_used,
        "source": source,
    }


def key_store(request: Request) -> RedisKeyStore | None:
    service: GraphService = request.app.state.graphs
    return redis_key_store(service.chat.services.settings, service.redis)


KeyStoreOrNone = Annotated[RedisKeyStore | None, Depends(key_store)]


def file_records(request: Request) -> list[KeyRecord]:
    """The live keys of the keys file, if one is set."""
    path = request.app.state.graphs.chat.services.settings.api_keys_file
    if path is None:
        return []
    try:
        records, _ = parse_keys_file(path)
    except OSError as exc:  # as authentication does: an unreadable file holds no key
        logger.error("API_KEYS_FILE unreadable, no key of it is listed: %s", exc)
        return []
    now = time.time()
    return [record for record in records.values() if record.usable(now)]


def missing(request: Request, key_id: str) -> Exception:
    """Why a key id is not in Redis: the keys file's (409), or no such key (404)."""
    if any(record.key_id == key_id for record in file_records(request)):
        return KeyNotManaged(f"Key {key_id!r} is in API_KEYS_FILE: change it in the file.")
    return NotFound(f"No key {key_id!r}.")


def managed(store: RedisKeyStore | None) -> RedisKeyStore:
    if store is None:
        raise KeyNotManaged(
            "Keys are kept in Redis: with no REDIS_URL, use `python -m auth --file` on the keys "
            "file."
        )
    return store


@router.get("", response_model=KeyList)
async def list_keys(admin: Admin, store: KeyStoreOrNone, request: Request) -> dict[str, Any]:
    """Every live key: Redis's, then the keys file's (`API_KEYS_FILE`); never a key itself."""
    keys = [view(record, "redis") for record in await store.records()] if store else []
    return {"keys": keys + [view(record, "file") for record in file_records(request)]}


@router.post("", status_code=201, response_model=CreatedKey)
async def create_key(body: NewKey, admin: Admin, store: KeyStoreOrNone) -> dict[str, Any]:
    """A new key for `principal`; the answer holds the key, once."""
    store = managed(store)
    expires = body.expires_at.timestamp() if body.expires_at is not None else None
    if expires is not None and expires <= time.time():
        raise InvalidInput("expires_at is in the past.")
    key = new_key()
    record = KeyRecord(
        body.principal, key_hash(key), body.quota(), time.time(), expires, body.admin
    )
    await store.add(record)
    audited(
        admin, "created key", record.key_id,
        principal=record.principal, quota=vars(record.quota), role_admin=record.admin,
    )  # fmt: skip
    return {**view(record, "redis"), "key": key}


@router.patch("/{key_id}", response_model=KeyView)
async def change_quota(
    key_id: str, body: QuotaBody, admin: Admin, store: KeyStoreOrNone, request: Request
) -> dict[str, Any]:
    """Change the key's quota: the fields given (null: the server's setting); the others
    stay."""
    given = {name: getattr(body, name) for name in body.model_fields_set}
    record = await managed(store).change_quota(key_id, given)
    if record is None:
        raise missing(request, key_id)
    audited(
        admin, "changed key", record.key_id,
        principal=record.principal, quota=vars(record.quota), changed=sorted(given),
    )  # fmt: skip
    return view(record, "redis")


@router.delete("/{key_id}", status_code=204)
async def revoke_key(
    key_id: str, admin: Admin, store: KeyStoreOrNone, request: Request
) -> Response:
    """Revoke the key: its next request, on any worker, is refused."""
    store = managed(store)
    record = await store.record(key_id)
    if record is None or not await store.revoke(key_id):
        raise missing(request, key_id)
    audited(admin, "revoked key", record.key_id, principal=record.principal)
    return Response(status_code=204)
