"""Every Redis key graphgate writes, built in this one module.

All keys share one prefix (`REDIS_PREFIX`, default `graphgate:`), and a route's own limits live
under `<prefix>route:<name>:`. The hash-tag rule: a key that one Lua script or transaction
touches together with others carries the part they share in braces (`{<principal>}`,
`{<thread>}`), so that on Redis Cluster they hash to one slot; keys touched alone (API keys,
the semantic index) need none.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

DEFAULT_PREFIX = "graphgate:"


def hash_tag(part: str) -> str:
    """`part` as a Redis Cluster hash tag: only what is inside the braces picks the slot."""
    return "{" + part + "}"


@dataclass(frozen=True)
class RedisKeys:
    """The keys under one prefix."""

    prefix: str = DEFAULT_PREFIX

    def route(self, name: str) -> RedisKeys:
        """The keys of a route's own limits (its rate limit, its token budget's minute)."""
        return RedisKeys(f"{self.prefix}route:{name}:")

    def rate_limit(self, principal: str) -> str:
        """The principal's sliding window: a sorted set of request times."""
        return f"{self.prefix}ratelimit:{hash_tag(principal)}"

    def usage_day(self, principal: str, day: date) -> str:
        """The principal's usage ledger for one UTC day: a hash of counters by model."""
        return f"{self.prefix}usage:{hash_tag(principal)}:{day.isoformat()}"

    def usage_overview(self, day: date, stripe: int = 0) -> str:
        """Every principal's usage of one UTC day by model, route and in total, in one stripe
        of the principals: a hash, in one slot with the stripe's rankings of that day."""
        return f"{self.prefix}usage_all:{hash_tag(f'usage_all:{stripe}')}:{day.isoformat()}"

    def usage_ranking(self, day: date, counter: str, stripe: int = 0) -> str:
        """The principals' `counter` on one UTC day, in one stripe: a sorted set."""
        return f"{self.usage_overview(day, stripe)}:by:{counter}"

    def end_users_day(self, principal: str, day: date) -> str:
        """The principal's end users' counters for one UTC day."""
        return f"{self.usage_day(principal, day)}:end_users"

    def tokens_minute(self, principal: str, minute: int) -> str:
        """The tokens the principal used in one minute (a route's, under `route(...)`)."""
        return f"{self.prefix}tpm:{hash_tag(principal)}:{minute}"

    def reserved(self, principal: str) -> str:
        """The principal's open budget reservations."""
        return f"{self.prefix}reserved:{hash_tag(principal)}"

    def concurrency_stripe(self, index: int) -> str:
        """One stripe of the cluster-wide concurrency slots: a sorted set of leases."""
        return f"{self.prefix}concurrency:{hash_tag(str(index))}"

    def reply(self, scope: str, digest: str) -> str:
        """An exact-match cached reply; the scope's hash tag keeps a principal in one slot."""
        return f"{self.prefix}cache:{hash_tag(scope)}:{digest}"

    def semantic_index(self, embeddings_model_digest: str) -> str:
        """The semantic cache's vector index (and its documents' prefix), one per embeddings
        model."""
        return f"{self.prefix}semantic_cache:{embeddings_model_digest}"

    def session_lock(self, thread_id: str) -> str:
        """The session's lock, in the thread's slot with its checkpoint."""
        return f"{self.prefix}session_lock:{hash_tag(thread_id)}"

    def session_fence(self, thread_id: str) -> str:
        """The session lock's fencing-token counter."""
        return f"{self.prefix}session_fence:{hash_tag(thread_id)}"

    def checkpoint(self, thread_id: str) -> str:
        """The thread's latest checkpoint: one hash."""
        return f"{self.prefix}checkpoint:{hash_tag(thread_id)}"

    def checkpoint_pattern(self) -> str:
        """A SCAN pattern that matches every thread's checkpoint."""
        return f"{self.prefix}checkpoint:*"

    def thread_of_checkpoint(self, key: str) -> str:
        """The thread id inside a checkpoint key."""
        return key[len(f"{self.prefix}checkpoint:") + 1 : -1]

    def thread_record(self, principal: str, thread: str) -> str:
        """A LangGraph API thread's record (JSON), in its principal's slot with their index."""
        return f"{self.prefix}lg_thread:{hash_tag(principal)}:{thread}"

    def thread_index(self, principal: str) -> str:
        """The principal's LangGraph API threads: a sorted set of ids by last update."""
        return f"{self.prefix}lg_threads:{hash_tag(principal)}"

    def run_record(self, principal: str, run: str) -> str:
        """A LangGraph API run's record (JSON), in its principal's slot."""
        return f"{self.prefix}lg_run:{hash_tag(principal)}:{run}"

    def run_events(self, principal: str, run: str) -> str:
        """A resumable run's events: a stream."""
        return f"{self.prefix}lg_events:{hash_tag(principal)}:{run}"

    def run_cancel(self, principal: str, run: str) -> str:
        """A request to cancel a run, for the worker that runs it to see."""
        return f"{self.run_record(principal, run)}:cancel"

    def thread_runs(self, principal: str, thread: str) -> str:
        """The ids of a thread's runs: a set, deleted with the thread."""
        return f"{self.prefix}lg_thread_runs:{hash_tag(principal)}:{thread}"

    def background_runs(self, principal: str) -> str:
        """The ids of a principal's background runs that have not ended: a set."""
        return f"{self.prefix}lg_background:{hash_tag(principal)}"

    def run_leases(self) -> str:
        """Every background run's lease, by `[principal, run id]`: a sorted set whose score is
        when the lease lapses (ms), in one slot with its owners."""
        return f"{self.prefix}lg_run_leases:{hash_tag('lg_runs')}"

    def run_owners(self) -> str:
        """The worker that holds each background run's lease: a hash."""
        return f"{self.prefix}lg_run_owners:{hash_tag('lg_runs')}"

    def live_workers(self) -> str:
        """Each worker's last report of what it is doing (`/admin/live`): a hash by worker."""
        return f"{self.prefix}live_workers:{hash_tag('live')}"

    def live_errors(self, minute: int) -> str:
        """The errors every worker answered in one minute (since the epoch), by code: a hash."""
        return f"{self.prefix}live_errors:{hash_tag('live')}:{minute}"

    def api_key(self, key_hash: str) -> str:
        """One API key's record, by the key's SHA-256."""
        return f"{self.prefix}apikey:{key_hash}"

    def api_key_index(self) -> str:
        """The index of API key ids, for listing and revoking."""
        return f"{self.prefix}apikeys"
