"""What start-up built leaves the garbage collector's full collections once the app is ready
(`api/startup_heap.py`): a full collection then walks only what requests created since."""

from __future__ import annotations

import gc

from graphs.runtime.settings import Settings
from server import create_app


async def test_what_start_up_built_is_frozen_out_of_full_collections() -> None:
    gc.unfreeze()  # an earlier test's app may have frozen its own start-up
    app = create_app(Settings(app_env="test", demo_tokens_per_second=0))
    assert gc.get_freeze_count() == 0
    try:
        async with app.router.lifespan_context(app):
            service = app.state.graphs
            assert gc.get_freeze_count() > 0
            # Tracked by the collector, yet in none of the generations a collection walks.
            assert gc.is_tracked(service)
            assert not any(tracked is service for tracked in gc.get_objects())
    finally:
        gc.unfreeze()
