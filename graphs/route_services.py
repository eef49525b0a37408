"""What the graph's nodes need at run time, built once and passed to the graph builder."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from dataclasses import dataclass

from langchain_core.language_models import BaseChatModel
from langchain_core.prompts import ChatPromptTemplate

from graphs.cache.embeddings import build_embeddings
from graphs.cache.reply_cache import InMemoryReplyCache, RedisReplyCache, ReplyCache
from graphs.cache.semantic_cache import InMemorySemanticCache, semantic_threshold
from graphs.clock import SYSTEM_CLOCK, Clock
from graphs.limits.budget import BudgetStore, InMemoryBudget, RedisBudget
from graphs.limits.concurrency import (
    ConcurrencySlots,
    LeasePool,
    LocalLeasePool,
    RedisLeasePool,
)
from graphs.limits.ratelimit import InMemoryRateLimiter, RateLimiter, RedisRateLimiter
from graphs.limits.usage import InMemoryUsageLedger, RedisUsageLedger, UsageLedger
from graphs.memory.session_lock import (
    HeldLock,
    LocalSessionLocks,
    RedisSessionLocks,
    SessionLocks,
    take_session_lock,
)
from graphs.model.factory import ModelSpec, build_chat_model, configured_specs
from graphs.model.pricing import PriceTable
from graphs.model.tokens import TokenCounter, load_encoding
from graphs.prompt import load_prompt_file, system_prompt
from graphs.routes import BUILT_IN_CHAT, RouteSpec
from graphs.settings import Settings
from graphs.store.keys import RedisKeys
from graphs.store.redis_client import RedisClient
from graphs.store.round_trip import RoundTrip


@dataclass
class RouteServices:
    """One route's services: its settings, token counter, limiter, models, usage ledger,
    budgets, prices, reply cache, concurrency slots and session locks."""

    settings: Settings
    counter: TokenCounter
    limiter: RateLimiter
    models: list[tuple[ModelSpec, BaseChatModel]]
    usage: UsageLedger
    budget: BudgetStore
    prices: PriceTable
    cache: ReplyCache | None
    slots: ConcurrencySlots
    session_locks: SessionLocks
    prompt: ChatPromptTemplate | None = None
    route: RouteSpec = BUILT_IN_CHAT
    clock: Clock = SYSTEM_CLOCK
    redis: RedisClient | None = None  # None in embedded mode

    def round_trip(self, step: str) -> RoundTrip:
        """Where the stores queue the commands of one `step` of a turn, sent together."""
        return RoundTrip(self.redis, step)

    @functools.cached_property
    def question_only(self) -> bool:
        """Whether the route's prompt takes the turn's question (`{question}`) but not its
        messages (`{turn}`): the turn's earlier messages then go in as history."""
        if self.prompt is None:
            return False
        variables = {*self.prompt.input_variables, *self.prompt.optional_variables}
        return "turn" not in variables

    @property
    def thread_route(self) -> str | None:
        """The route part of this route's thread ids (none for the built-in chat's)."""
        return self.route.thread_route

    async def take_session_lock(
        self, thread_id: str, wait: float | None = None, conflict: str | None = None
    ) -> HeldLock:
        """The session's lock for one turn (or a deletion), under `conflict` (`enqueue` or
        `reject`; `SESSION_CONFLICT` unless given), waiting at most `wait` seconds
        (`QUEUE_TIMEOUT` unless given)."""
        settings = self.settings
        wait = settings.queue_timeout if wait is None else wait
        conflict = conflict or settings.session_conflict
        return await take_session_lock(self.session_locks, thread_id, conflict, wait)

    @functools.cached_property
    def prompt_tokens(self) -> int:
        """What the route's prompt adds to a turn (its system message), in tokens."""
        if self.prompt is None:
            return 0
        fixed = self.prompt.format_messages(history=[], turn=[], question="")
        return self.counter.count_messages(fixed)

    @property
    def calls_tools(self) -> bool:
        """Whether every configured model can be given tools (the demo model cannot)."""
        return all(
            type(model).bind_tools is not BaseChatModel.bind_tools for _, model in self.models
        )

    @property
    def uses_demo_model(self) -> bool:
        return any(spec.provider == "demo" for spec, _ in self.models)


def build_services(
    settings: Settings, redis: RedisClient | None, clock: Clock = SYSTEM_CLOCK
) -> RouteServices:
    """Models, limiter and tokenizer for `settings`; nothing here opens a connection."""
    specs = configured_specs(settings)
    usage: UsageLedger
    budget: BudgetStore
    if redis is None:
        usage = InMemoryUsageLedger(clock)
        budget = InMemoryBudget(usage, clock)
    else:
        usage = RedisUsageLedger(
            redis,
            settings.redis_prefix,
            settings.usage_retention_days,
            clock,
            settings.overview_stripes,
            settings.usage_overview_flush_seconds,
        )
        budget = RedisBudget(redis, usage, settings.redis_prefix)
    return RouteServices(
        settings=settings,
        counter=TokenCounter(load_encoding(specs[0].name, settings.tiktoken_cache_dir)),
        limiter=build_limiter(settings, redis, settings.redis_prefix, clock),
        models=[(spec, build_chat_model(spec, settings)) for spec in specs],
        usage=usage,
        budget=budget,
        prices=PriceTable.load(settings.pricing_file),
        cache=build_cache(settings, redis),
        slots=ConcurrencySlots(
            settings.max_concurrency, build_lease_pool(settings, redis), settings.queue_timeout
        ),
        session_locks=build_session_locks(settings, redis),
        prompt=chat_prompt(settings),
        clock=clock,
        redis=redis,
    )


def services_for(base: RouteServices, spec: RouteSpec, redis: RedisClient | None) -> RouteServices:
    """A route's services: the process's shared parts (concurrency slots, usage ledger, budget
    reservations, cache, prices) with the route's settings, models, prompt and its own
    rate-limit windows."""
    if spec == BUILT_IN_CHAT and spec.settings(base.settings) == base.settings:
        return base
    settings = spec.settings(base.settings)
    specs = configured_specs(settings)
    same_models = [s for s, _ in base.models] == specs
    return dataclasses.replace(
        base,
        settings=settings,
        limiter=build_limiter(
            settings, redis, RedisKeys(settings.redis_prefix).route(spec.name).prefix, base.clock
        ),
        models=base.models if same_models else [(s, build_chat_model(s, settings)) for s in specs],
        prompt=chat_prompt(settings) if spec.kind == "chat" else None,
        route=spec,
    )


def build_limiter(
    settings: Settings, redis: RedisClient | None, prefix: str, clock: Clock
) -> RateLimiter:
    """The sliding window; in Redis it runs on the server's clock, so every replica agrees."""
    if redis is None:
        return InMemoryRateLimiter(settings.rate_limit_max, settings.rate_limit_window, clock)
    return RedisRateLimiter(redis, prefix, settings.rate_limit_max, settings.rate_limit_window)


def chat_prompt(settings: Settings) -> ChatPromptTemplate:
    """`PROMPT_FILE` when set, else `SYSTEM_PROMPT` before the conversation."""
    if settings.prompt_file is not None:
        return load_prompt_file(settings.prompt_file)
    return system_prompt(settings.system_prompt)


def build_session_locks(settings: Settings, redis: RedisClient | None) -> SessionLocks:
    """Shared by every route (their thread ids differ); a session's token counter lives as
    long as an idle session does."""
    if redis is None:
        return LocalSessionLocks()
    return RedisSessionLocks(
        redis, settings.redis_prefix, settings.session_lock_lease, settings.session_ttl
    )


def build_lease_pool(settings: Settings, redis: RedisClient | None) -> LeasePool | None:
    if not settings.global_max_concurrency:
        return None
    if redis is None:
        return LocalLeasePool(settings.global_max_concurrency)
    return RedisLeasePool(
        redis,
        settings.redis_prefix,
        settings.global_max_concurrency,
        settings.concurrency_lease_ttl,
        settings.concurrency_stripes,
    )


def semantic_index_name(settings: Settings) -> str:
    """The semantic cache's index, one per embeddings model: another model's vectors have
    another size (RedisVL refuses to open an index whose schema differs), and another meaning."""
    model = hashlib.sha256(settings.embeddings_model.encode()).hexdigest()[:12]
    return RedisKeys(settings.redis_prefix).semantic_index(model)


def build_cache(settings: Settings, redis: RedisClient | None) -> ReplyCache | None:
    if settings.cache_mode == "off":
        return None
    if settings.cache_mode == "exact":
        if redis is None:
            return InMemoryReplyCache(settings.cache_ttl, settings.cache_max_entries)
        return RedisReplyCache(redis, settings.redis_prefix, settings.cache_ttl)
    embeddings = build_embeddings(settings)
    threshold = semantic_threshold(settings)
    url = settings.resolved_redis_url
    if redis is None or url is None:
        return InMemorySemanticCache(
            embeddings,
            threshold,
            settings.cache_ttl,
            settings.cache_max_entries,
        )
    from graphs.cache.redis_semantic_cache import RedisSemanticCache  # large: only if used

    return RedisSemanticCache(
        embeddings,
        redis_url=url,
        name=semantic_index_name(settings),
        threshold=threshold,
        ttl_seconds=settings.cache_ttl,
    )
