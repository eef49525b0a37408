"""What is alive once the app is ready leaves the garbage collector's full collections while it
serves (`serving/startup_heap.py`), and comes back when it shuts down."""

from __future__ import annotations

import gc

from graphs.settings import Settings
from server import create_app


def walked_by_a_collection(thing: object) -> bool:
    return any(tracked is thing for tracked in gc.get_objects())


async def test_start_up_objects_are_frozen_while_the_app_serves_and_released_at_shutdown() -> None:
    app = create_app(Settings(app_env="test", demo_tokens_per_second=0))
    async with app.router.lifespan_context(app):
        service = app.state.graphs
        assert gc.is_tracked(service)  # a collected kind of object, yet
        assert not walked_by_a_collection(service)
    assert walked_by_a_collection(service)


async def test_the_young_generation_is_collected_at_its_setting_while_the_app_serves() -> None:
    before = gc.get_threshold()
    app = create_app(Settings(app_env="test", demo_tokens_per_second=0, gc_gen0_threshold=12_345))
    async with app.router.lifespan_context(app):
        assert gc.get_threshold() == (12_345, *before[1:])
    assert gc.get_threshold() == before
