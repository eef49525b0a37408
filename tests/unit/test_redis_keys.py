"""The hash-tag rule of `graphs/store/keys.py`: the keys one script touches together share a
Redis Cluster slot, whatever the prefix and the route."""

from __future__ import annotations

from datetime import date

from redis.crc import key_slot

from graphs.store.keys import RedisKeys


def slots(*keys: str) -> set[int]:
    return {key_slot(key.encode()) for key in keys}


def test_a_principals_budget_and_ledger_keys_share_one_slot() -> None:
    keys = RedisKeys("tenant-a:")
    principal, day, minute = "auth0|42", date(2026, 12, 5), 29_412_345
    assert (
        len(
            slots(
                keys.reserved(principal),
                keys.usage_day(principal, day),
                keys.end_users_day(principal, day),
                keys.tokens_minute(principal, minute),
                keys.route("summarize").tokens_minute(principal, minute),
                keys.rate_limit(principal),
                keys.route("summarize").rate_limit(principal),
            )
        )
        == 1
    )


def test_a_sessions_lock_fence_and_checkpoint_share_one_slot() -> None:
    keys, thread = RedisKeys(), "alice:summarize:s-1"
    assert (
        len(slots(keys.session_lock(thread), keys.session_fence(thread), keys.checkpoint(thread)))
        == 1
    )


def test_a_checkpoint_key_gives_back_its_thread() -> None:
    keys = RedisKeys("x:")
    assert keys.thread_of_checkpoint(keys.checkpoint("bob:s-9")) == "bob:s-9"


def test_every_key_carries_the_prefix() -> None:
    keys = RedisKeys("p:")
    built = [
        keys.rate_limit("a"),
        keys.reply("a", "d"),
        keys.semantic_index("m"),
        keys.concurrency_stripe(3),
        keys.api_key("h"),
        keys.api_key_index(),
        keys.route("r").reserved("a"),
    ]
    assert all(key.startswith("p:") for key in built)
