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

While it serves, the young generation is collected every `GC_GEN0_THRESHOLD` allocations
(Python's default is 700). Streams allocate per token (chunks, futures, events): at 700 a worker
holding 500 paced streams (`make bench`'s S1) collected hundreds of times a second, promoting
objects that live for a token into the older generations, whose collections then stalled every
stream (up to 57 ms, 11 full ones in 35 s at 300 streams). Measured at 500 streams, one run
each: at 700 the delivered gap was 124 ms at p99 (the level failed) and a token cost 96.6 us of
CPU; at 50,000, 60 ms and 87.5 us, and 800 streams held (75 ms). The older generations keep
Python's thresholds; memory stays bounded by reference counting and those collections.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def frozen_startup_heap(gen0_threshold: int) -> Iterator[None]:
    """Freeze what is alive for the block, with the young generation's threshold at
    `gen0_threshold`; then unfreeze and put the threshold back."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(gen0_threshold, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
