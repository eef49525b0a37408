"""API keys: high-entropy random strings that graphgate stores only as SHA-256 hashes.

A presented key is hashed and looked up by its hash: a stolen store or log holds no usable key.
(A slow password hash buys nothing for 256-bit random keys, and SHA-256 keeps the lookup a
dictionary or Redis read.) Two stores: a keys file for small deployments and embedded mode,
re-read when it changes (here), and Redis for everything else (`auth/redis_key_store.py`),
where a revoked key is gone for every worker and pod at its next request.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from graphs.identity import PRINCIPAL_RULE, Quota, is_principal_name

KEY_PREFIX = "gg_"
ADMIN_ROLE = "admin"  # a key's role option (`role=admin`): it opens the operator console
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
    admin: bool = False  # the key opens the operator console and `/admin/`
    last_used: float | None = None  # to `KEY_LAST_USED_RESOLUTION`; Redis keys only

    @property
    def key_id(self) -> str:
        """A short public name of the key (for listing, revoking and logs)."""
        return self.hash[:12]

    def usable(self, now: float) -> bool:
        return self.expires is None or now < self.expires


class KeyStore(Protocol):
    async def find(self, hash: str) -> KeyRecord | None: ...

    async def used(self, record: KeyRecord, now: float) -> None:
        """Note that `record`'s key authenticated a request at `now`."""


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
    unknown = set(options) - set(QUOTA_FIELDS) - {"expires", "role"}
    if unknown:
        raise ValueError(f"unknown option(s) {sorted(unknown)}")
    if options.get("role", ADMIN_ROLE) != ADMIN_ROLE:
        raise ValueError(f"role may only be {ADMIN_ROLE!r}")
    expires = float(options["expires"]) if options.get("expires") else None
    admin = "role" in options
    return KeyRecord(words[0], words[1].lower(), quota_from(options), expires=expires, admin=admin)


def key_line(record: KeyRecord) -> str:
    options = quota_fields(record.quota)
    if record.expires is not None:
        options["expires"] = f"{record.expires:.0f}"
    if record.admin:
        options["role"] = ADMIN_ROLE
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

    async def used(self, record: KeyRecord, now: float) -> None:
        """A keys file is not written by the server: its keys' last use is not kept."""
