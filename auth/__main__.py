"""`python -m auth`: create, list and revoke API keys.

    python -m auth create --principal NAME [--rate-limit N] [--tokens-per-minute N]
                          [--daily-budget-usd X] [--expires 30d|2027-01-31] [--admin]
                          [--file PATH]
    python -m auth list [--file PATH]
    python -m auth revoke KEY_ID [--file PATH]

Keys go to Redis (`REDIS_URL`, `REDIS_PREFIX`) unless `--file` names a keys file
(`API_KEYS_FILE`). `create` prints the new key once: only its SHA-256 hash is stored. A key made
with `--admin` also opens the operator console (`/console`) and `/admin/`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from auth.api_keys import (
    KeyRecord,
    key_hash,
    key_line,
    new_key,
    parse_key_line,
    read_keys_file,
)
from auth.redis_key_store import RedisKeyStore
from graphs.identity import PRINCIPAL_RULE, Quota, is_principal_name
from graphs.settings import Settings
from graphs.store.redis_client import build_redis

DURATION = re.compile(r"^(\d+)([dh])$")


def expiry(text: str | None) -> float | None:
    """`30d`, `12h` or an ISO date (UTC) as a Unix time."""
    if not text:
        return None
    if match := DURATION.match(text):
        hours = int(match.group(1)) * (24 if match.group(2) == "d" else 1)
        return time.time() + hours * 3600
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def positive(kind: Callable[[str], float]) -> Callable[[str], float]:
    """An argparse type for a number that cannot be negative."""

    def parse(text: str) -> float:
        value = kind(text)
        if value < 0:
            raise argparse.ArgumentTypeError(f"{text} is negative")
        return value

    return parse


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(prog="python -m auth", description="Manage graphgate API keys.")
    commands = cli.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="make a key and print it once")
    create.add_argument("--principal", required=True)
    create.add_argument("--rate-limit", type=positive(int), help="overrides RATE_LIMIT_MAX")
    create.add_argument(
        "--tokens-per-minute", type=positive(int), help="overrides TOKENS_PER_MINUTE (0: off)"
    )
    create.add_argument(
        "--daily-budget-usd", type=positive(float), help="overrides DAILY_BUDGET_USD (0: off)"
    )
    create.add_argument("--expires", help="30d, 12h or an ISO date")
    create.add_argument("--admin", action="store_true", help="the key opens the console")
    revoke = commands.add_parser("revoke", help="stop a key from working")
    revoke.add_argument("key_id")
    listing = commands.add_parser("list", help="the keys (ids, principals, limits; no secrets)")
    for command in (create, revoke, listing):
        command.add_argument("--file", type=Path, help="a keys file instead of Redis")
    return cli


def describe(record: KeyRecord) -> str:
    expires = "never" if record.expires is None else datetime.fromtimestamp(record.expires, UTC)
    limits = ", ".join(f"{k}={v}" for k, v in vars(record.quota).items() if v is not None)
    who = f"{record.principal}  admin" if record.admin else record.principal
    return f"{record.key_id}  {who}  expires {expires}  {limits or 'server limits'}"


@asynccontextmanager
async def redis_store(settings: Settings) -> AsyncIterator[RedisKeyStore]:
    redis = build_redis(settings)
    if redis is None:
        raise SystemExit("No Redis configured (REDIS_URL): use --file for a keys file.")
    try:
        yield RedisKeyStore(redis, settings.redis_prefix)
    finally:
        await redis.aclose()


def create(args: argparse.Namespace) -> tuple[str, KeyRecord]:
    if not is_principal_name(args.principal):
        raise SystemExit(f"--principal must be {PRINCIPAL_RULE}.")
    key = new_key()
    quota = Quota(args.rate_limit, args.tokens_per_minute, args.daily_budget_usd)
    record = KeyRecord(
        args.principal, key_hash(key), quota, time.time(), expiry(args.expires), args.admin
    )
    return key, record


def key_id_of(line: str) -> str | None:
    try:
        record = parse_key_line(line)
    except ValueError:
        return None
    return None if record is None else record.key_id


def revoke_in_file(path: Path, key_id: str) -> bool:
    """Drop the key's line; the file is replaced whole, so a server never reads half of it."""
    lines = path.read_text().splitlines()
    kept = [line for line in lines if key_id_of(line) != key_id]
    replacement = path.with_name(f".{path.name}.{os.getpid()}")
    replacement.write_text("".join(f"{line}\n" for line in kept))
    os.replace(replacement, path)
    return len(kept) < len(lines)


def run_on_file(args: argparse.Namespace, path: Path) -> None:
    if args.command == "create":
        key, record = create(args)
        with path.open("a") as keys:
            keys.write(key_line(record) + "\n")
        announce(key, record)
    elif args.command == "list":
        for record in read_keys_file(path).values():
            print(describe(record))
    elif revoke_in_file(path, args.key_id):
        print(f"revoked {args.key_id}")
    else:
        raise SystemExit(f"no key {args.key_id}")


async def run_on_redis(args: argparse.Namespace, settings: Settings) -> None:
    async with redis_store(settings) as store:
        if args.command == "create":
            key, record = create(args)
            await store.add(record)
            announce(key, record)
        elif args.command == "list":
            for record in await store.records():
                print(describe(record))
        elif await store.revoke(args.key_id):
            print(f"revoked {args.key_id}")
        else:
            raise SystemExit(f"no key {args.key_id}")


def announce(key: str, record: KeyRecord) -> None:
    print(f"key id {record.key_id} for {record.principal}; the key (shown only now):")
    print(key)


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.file:
        run_on_file(args, args.file)
    else:
        asyncio.run(run_on_redis(args, Settings()))


if __name__ == "__main__":
    main(sys.argv[1:])
