"""A thread's checkpoint hash (`graphs/memory/redis_saver.py`) read in one step, its idle TTL
renewed in the same step: on its own, or queued in the round trip of the turn's admission.

Admission queues the read right after the session lock it takes, in the same trip: the lock
and the hash share the thread's hash slot, so they run in that order on one node of a Cluster
too, and once the lock is taken nobody else can write the thread. The turn's run then reads its
thread without a trip of its own (`Prefetched`, on the run's facts); a lock that was busy leaves
the read unused, and the run reads once it holds the lock.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphs.memory.checkpoint_hash import decoded
from graphs.store.round_trip import Reply, RoundTrip


def read_in(trip: RoundTrip, key: str, ttl_ms: int) -> Reply[dict[str, bytes]]:
    """The hash at `key`, its TTL renewed, queued in `trip`."""
    fields = trip.command("HGETALL", key, decode=decoded, part="checkpoint read")
    trip.command("PEXPIRE", key, ttl_ms)
    return fields


@dataclass
class Prefetched:
    """A thread's hash as the turn's admission read it, for the run's first read only: a
    later read (after the run has written) goes to Redis. Taken, it is let go: a stream's run
    would otherwise hold the stored session for as long as it streams."""

    thread_id: str
    fields: Reply[dict[str, bytes]] | None

    def take(self, thread_id: str) -> dict[str, bytes] | None:
        if self.fields is None or thread_id != self.thread_id:
            return None
        fields, self.fields = self.fields, None
        return fields.value
