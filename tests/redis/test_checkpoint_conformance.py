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


@pytest.mark.parametrize(("keep", "cannot_pass"), [(1, NEEDS_HISTORY), (100, {})])
@pytest.mark.parametrize("flavour", REDIS_FLAVOURS)
async def test_the_saver_passes_langgraphs_checkpointer_tests_its_history_allows(
    redis_flavours: RedisFlavours, flavour: str, keep: int, cannot_pass: dict[str, set[str]]
) -> None:
    @checkpointer_test(name=f"BoundedRedisSaver keeping {keep} on {flavour}")
    async def saver() -> AsyncIterator[BoundedRedisSaver]:
        redis = redis_flavours.async_client(flavour)
        yield BoundedRedisSaver(redis, f"conformance-{keep}:", 600, keep=keep)
        await redis.aclose()

    report = await validate(saver)
    failed = {
        name: {failure.split(":")[0].strip() for failure in result.failures}
        for name, result in report.results.items()
        if result.failures
    }
    assert failed == cannot_pass
    for capability in BASE:
        result = report.results[capability]
        assert result.detected
        assert result.tests_passed > 0
