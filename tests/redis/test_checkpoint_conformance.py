"""LangGraph's own checkpointer tests (langgraph-checkpoint-conformance) against graphgate's
saver on every Redis flavour. Keeping the latest checkpoint of a thread only (a chain's
sessions), the tests that read an older checkpoint back (by id, or by listing a thread's
history) cannot pass and are named here; every other test of the base capabilities must.
Keeping more than any test writes (a LangGraph API thread's `CHECKPOINT_HISTORY`), every test
must pass."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from langgraph.checkpoint.conformance import checkpointer_test, validate

from graphs.memory.redis_saver import BoundedRedisSaver
from tests.conftest import REDIS_FLAVOURS
from tests.redis_servers import RedisFlavours

# Each puts two or more checkpoints on one thread and reads an earlier one back.
NEEDS_HISTORY = {
    "put": {"test_put_multiple_checkpoints_same_thread", "test_put_incremental_channel_update"},
    "get_tuple": {"test_get_tuple_specific_checkpoint_id"},
    "list": {
        "test_list_all",
        "test_list_by_thread",
        "test_list_ordering",
        "test_list_metadata_filter_single_key",
        "test_list_metadata_filter_step",
        "test_list_metadata_custom_keys",
        "test_list_before",
        "test_list_limit",
        "test_list_limit_plus_before",
        "test_list_combined_thread_and_filter",
    },
}
BASE = {"put", "put_writes", "get_tuple", "list", "delete_thread"}


@pytest.mark.parametrize("flavour", REDIS_FLAVOURS)
async def test_the_saver_passes_langgraphs_checkpointer_tests_that_do_not_need_history(
    redis_flavours: RedisFlavours, flavour: str
) -> None:
    @checkpointer_test(name=f"BoundedRedisSaver on {flavour}")
    async def saver() -> AsyncIterator[BoundedRedisSaver]:
        redis = redis_flavours.async_client(flavour)
        yield BoundedRedisSaver(redis, "conformance:", 600)
        await redis.aclose()

    report = await validate(saver)
    failed = {
        name: {failure.split(":")[0].strip() for failure in result.failures}
        for name, result in report.results.items()
        if result.failures
    }
    assert failed == NEEDS_HISTORY
    for capability in BASE:
        result = report.results[capability]
        assert result.detected
        assert result.tests_passed > 0


@pytest.mark.parametrize("flavour", REDIS_FLAVOURS)
async def test_the_saver_with_history_passes_every_base_test(
    redis_flavours: RedisFlavours, flavour: str
) -> None:
    @checkpointer_test(name=f"BoundedRedisSaver keeping 100 on {flavour}")
    async def saver() -> AsyncIterator[BoundedRedisSaver]:
        redis = redis_flavours.async_client(flavour)
        yield BoundedRedisSaver(redis, "conformance-history:", 600, keep=100)
        await redis.aclose()

    report = await validate(saver)
    failed = {name: result.failures for name, result in report.results.items() if result.failures}
    assert failed == {}
    for capability in BASE:
        assert report.results[capability].tests_passed > 0
