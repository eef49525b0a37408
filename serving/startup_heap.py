"""While the app serves, the objects alive once it is ready (modules, schemas, models, compiled
graphs: about 220,000) are out of the cyclic garbage collector's sight (`gc.freeze()`).

Left in, every full collection walks them all, and a full collection comes every few thousand
requests: `bench/gc_pauses.py` plays invoke turns in process on the bench's configuration, and
in 4,900 turns the worker stalled 289-338 ms (two runs) in one (every open stream and request
with it). Frozen, the longest full collection took 2.6-4.6 ms. Objects created later are
collected as usual, and reference counting still frees frozen objects that are dropped; only a
reference cycle among frozen objects waits for the unfreeze at shutdown (so an app that ends, as
the tests' apps do, can be collected). No collection comes first: measured, one at that point
found nothing unreachable and added 238 ms to the start-up.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def frozen_startup_heap() -> Iterator[None]:
    """Freeze what is alive for the block, then unfreeze."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
