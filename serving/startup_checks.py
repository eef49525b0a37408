"""Refuse to start a configuration that cannot work or is unsafe, with one line that names the
setting to fix. Production (`APP_ENV=production`) must authenticate its callers, answer with a
real model, keep its state in Redis and keep its metrics behind a token."""

from __future__ import annotations

from urllib.parse import urlsplit

from auth.api_keys import read_keys_file
from graphs.cache.semantic_cache import semantic_threshold
from graphs.model.demo_model import DEMO_MODEL_NAME
from graphs.model.factory import ModelSpec, configured_specs
from graphs.model.pricing import PriceTable
from graphs.routes import RouteFileError, load_route_specs
from graphs.settings import Settings
from serving.graceful_timeout import longest_turn_seconds


def configuration_problem(settings: Settings) -> str | None:
    """What makes this configuration unusable in any environment, if anything."""
    try:
        configured_specs(settings)
    except ValueError as exc:
        return f"LLM_MODEL / LLM_FALLBACK_MODEL: {exc}"
    if settings.auth_mode == "jwt":
        missing = [
            name
            for name, value in (
                ("JWT_ISSUER", settings.jwt_issuer),
                ("JWT_AUDIENCE", settings.jwt_audience),
            )
            if not value
        ]
        if missing:
            return f"AUTH_MODE=jwt needs {' and '.join(missing)}."
        if (settings.jwt_jwks_url is None) == (settings.jwt_jwks_file is None):
            return "AUTH_MODE=jwt needs exactly one of JWT_JWKS_URL and JWT_JWKS_FILE."
    if settings.auth_mode == "api_key" and not (
        settings.api_keys_file or settings.resolved_redis_url
    ):
        return "AUTH_MODE=api_key needs API_KEYS_FILE or Redis (REDIS_URL) to hold the keys."
    problem = redis_problem(settings) or budget_problem(settings) or reservation_problem(settings)
    if problem:
        return problem
    if settings.cache_mode == "semantic":
        try:
            semantic_threshold(settings)
        except ValueError as exc:
            return str(exc)
    if settings.api_keys_file is not None:
        try:
            read_keys_file(settings.api_keys_file)
        except (OSError, ValueError) as exc:
            return f"API_KEYS_FILE: {exc}"
    return None


def served_models(settings: Settings) -> list[ModelSpec]:
    """Every model a route may call: the server's primary and fallback, and each route's."""
    specs = configured_specs(settings)
    try:
        routes = load_route_specs(settings)
    except RouteFileError:
        return specs  # the route file's own problem is reported when the routes load
    for route in routes:
        specs += [s for s in configured_specs(route.settings(settings)) if s not in specs]
    return specs


def budget_problem(settings: Settings) -> str | None:
    """A price file that cannot be read, or a spend budget with a model it cannot price (its
    calls would cost nothing and the budget would never bind)."""
    try:
        prices = PriceTable.load(settings.pricing_file)
    except (OSError, ValueError, KeyError) as exc:
        return f"PRICING_FILE {settings.pricing_file}: {exc}"
    if not settings.daily_budget_usd:
        return None
    unpriced = [
        spec.label
        for spec in served_models(settings)
        if spec.provider != DEMO_MODEL_NAME and prices.price_of(spec.name) is None
    ]
    if not unpriced:
        return None
    return (
        f"DAILY_BUDGET_USD={settings.daily_budget_usd:g} cannot be enforced: no price for "
        f"{', '.join(unpriced)}. Configure its price in a PRICING_FILE (TOML: "
        '[models."<name>"] input = ..., output = ..., USD per million tokens).'
    )


def reservation_problem(settings: Settings) -> str | None:
    """A `BUDGET_RESERVATION_TTL` that a request could outlive (unset, each route derives one
    from its own deadline)."""
    if settings.budget_reservation_ttl is None:
        return None
    longest_turn = longest_turn_seconds(settings) - settings.queue_timeout
    longest = settings.longest_request_seconds(longest_turn)
    if settings.budget_reservation_ttl > longest:
        return None
    return (
        f"BUDGET_RESERVATION_TTL={settings.budget_reservation_ttl:g} must exceed the longest a "
        f"request may run, {longest:g} s (a full batch's rounds of QUEUE_TIMEOUT + the longest "
        "route's REQUEST_TIMEOUT), or a running turn's reservation could lapse; or leave it unset."
    )


def redis_problem(settings: Settings) -> str | None:
    """Redis settings that contradict each other or what a Redis Cluster can do."""
    if (
        settings.redis_wait_replicas
        and settings.redis_wait_timeout >= settings.redis_socket_timeout
    ):
        return (
            "REDIS_WAIT_TIMEOUT must be shorter than REDIS_SOCKET_TIMEOUT: WAIT answers after "
            "its timeout, and the reply must come before the socket gives up on it."
        )
    return cluster_problem(settings) if settings.redis_cluster else None


def cluster_problem(settings: Settings) -> str | None:
    """What a Redis Cluster cannot do: reach a node by unix socket, hold a database other than
    0, or search across shards (the semantic cache's index would see one shard's entries)."""
    if settings.resolved_redis_url is None:
        return "REDIS_CLUSTER=true needs a node of the cluster: set REDIS_URL."
    url = urlsplit(settings.resolved_redis_url)
    if url.scheme == "unix":
        return "REDIS_CLUSTER=true needs a redis:// or rediss:// REDIS_URL, not a unix socket."
    if url.path.strip("/") not in ("", "0"):
        return "REDIS_CLUSTER=true: a Redis Cluster has database 0 only; drop it from REDIS_URL."
    if settings.cache_mode == "semantic":
        return (
            "CACHE_MODE=semantic does not run on a Redis Cluster (its search index would see "
            "one shard): use CACHE_MODE=exact, or a single Redis with the search module."
        )
    return None


def production_problem(settings: Settings) -> str | None:
    """What makes this configuration unsafe to serve real users with."""
    if settings.app_env != "production":
        return None
    if settings.auth_mode == "none" and not settings.allow_anonymous:
        return (
            "APP_ENV=production with AUTH_MODE=none: set AUTH_MODE to api_key, jwt or "
            "trusted_header (or ALLOW_ANONYMOUS=true to serve everyone as one principal)."
        )
    if any(spec.provider == DEMO_MODEL_NAME for spec in configured_specs(settings)):
        return (
            "APP_ENV=production would answer with the offline demo model: set OPENAI_API_KEY "
            "or OPENAI_BASE_URL (or an anthropic: LLM_MODEL with ANTHROPIC_API_KEY)."
        )
    if settings.resolved_redis_url is None:
        return "APP_ENV=production needs Redis for shared state: set REDIS_URL."
    if settings.metrics_token is None or not settings.metrics_token.get_secret_value():
        return (
            "APP_ENV=production would serve /metrics to anyone: set METRICS_TOKEN (a secret; "
            "Prometheus sends it as a bearer token)."
        )
    return None


def refuse_unsafe_start(settings: Settings) -> None:
    """Exit (non-zero, one line on stderr) when the configuration must not be served."""
    problem = configuration_problem(settings) or production_problem(settings)
    if problem:
        raise SystemExit(f"graphgate refuses to start: {problem}")
