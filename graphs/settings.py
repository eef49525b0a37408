"""Every setting graphgate reads, in one typed object built once from the environment."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from graphs.store.keys import DEFAULT_PREFIX

# Beyond a request's longest run: settling its turn, and clocks that differ a little.
RESERVATION_MARGIN_SECONDS = 30
DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful assistant. Answer accurately and concisely; say so when you do not know."
)


class Settings(BaseSettings):
    """Environment variables, case-insensitive; the table in docs/settings.md mirrors this class."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    app_env: Literal["development", "test", "production"] = "development"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_prompts: bool = False

    auth_mode: Literal["none", "api_key", "jwt", "trusted_header"] = "none"
    allow_anonymous: bool = False
    api_keys_file: Path | None = None
    auth_header: str = "X-Authenticated-User"
    # No default: a gateway set up before admins existed passes a client's own copy through.
    auth_roles_header: str = ""
    admin_role: str = Field(default="admin", min_length=1)
    key_last_used_resolution: float = Field(default=60.0, ge=0)
    admin_near_limit_ratio: float = Field(default=0.8, gt=0, le=1)
    admin_error_minutes: int = Field(default=60, ge=1, le=24 * 60)
    live_report_seconds: float = Field(default=5.0, gt=0)
    jwt_jwks_url: str | None = None
    jwt_jwks_file: Path | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_algorithms: str = "RS256,ES256,EdDSA"
    jwt_principal_claim: str = "sub"
    jwt_roles_claim: str = "roles"
    jwt_leeway: float = Field(default=30.0, ge=0, le=300)
    jwt_jwks_cache_seconds: float = Field(default=300.0, gt=0)
    jwt_jwks_max_stale_seconds: float = Field(default=3600.0, ge=0)
    metrics_token: SecretStr | None = None
    enable_playground: bool | None = None
    cors_origins: str = ""

    redis_url: str | None = None
    redis_host: str | None = None
    redis_port: int = Field(default=6379, ge=1, le=65535)
    redis_cluster: bool = False
    redis_prefix: str = DEFAULT_PREFIX
    redis_max_connections: int = Field(default=50, ge=1)
    redis_pool_timeout: float = Field(default=5.0, gt=0)
    redis_connect_timeout: float = Field(default=2.0, gt=0)
    redis_socket_timeout: float = Field(default=5.0, gt=0)
    redis_wait_replicas: int = Field(default=0, ge=0)
    redis_wait_timeout: float = Field(default=1.0, gt=0)

    llm_model: str = "gpt-4o-mini"
    llm_fallback_model: str | None = None
    llm_max_retries: int = Field(default=2, ge=0)
    llm_attempt_timeout: float = Field(default=20.0, gt=0)
    stream_upstream_on_invoke: bool = False
    request_timeout: float = Field(default=30.0, gt=0)
    max_concurrency: int = Field(default=10, ge=1)
    global_max_concurrency: int = Field(default=0, ge=0)
    concurrency_lease_ttl: float = Field(default=30.0, gt=0)
    global_concurrency_stripes: int | None = Field(default=None, ge=1)
    queue_timeout: float = Field(default=10.0, gt=0)
    graceful_timeout: int | None = Field(default=None, ge=1)
    demo_tokens_per_second: float = Field(default=30.0, ge=0)
    gc_gen0_threshold: int = Field(default=50_000, ge=1)
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    prompt_file: Path | None = None
    routes_file: Path | None = None
    max_output_tokens: int = Field(default=4096, ge=1)

    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    anthropic_api_key: SecretStr | None = None
    anthropic_base_url: str | None = None
    tiktoken_cache_dir: str | None = None

    max_input_tokens: int = Field(default=2000, ge=1)
    max_history_messages: int = Field(default=40, ge=2)
    session_ttl: int = Field(default=3600, ge=60)
    session_conflict: Literal["enqueue", "reject"] = "enqueue"
    session_lock_lease: float = Field(default=15.0, gt=0)
    run_cancel_poll: float = Field(default=0.5, gt=0, le=60)
    run_events_max: int = Field(default=10_000, ge=10)
    run_events_ttl: int = Field(default=3600, ge=10)
    run_lease: float = Field(default=10.0, gt=0, le=600)
    checkpoint_history: int = Field(default=10, ge=1, le=1000)
    checkpoint_compact_messages: bool = True
    background_runs_max: int = Field(default=10, ge=1)
    rate_limit_max: int = Field(default=20, ge=1)
    rate_limit_window: float = Field(default=60.0, gt=0)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_discard_bytes: int = Field(default=67_108_864, ge=0)
    max_json_depth: int = Field(default=64, ge=4, le=500)
    max_header_bytes: int = Field(default=16_384, ge=1024)
    max_config_hash_chars: int = Field(default=1024, ge=64)
    pricing_file: Path | None = None
    usage_retention_days: int = Field(default=90, ge=1)
    usage_overview_stripes: int | None = Field(default=None, ge=1)
    usage_overview_flush_seconds: float = Field(default=5.0, ge=0)
    tokens_per_minute: int = Field(default=0, ge=0)
    daily_budget_usd: float = Field(default=0.0, ge=0)
    budget_reservation_ttl: float | None = Field(default=None, gt=0)
    cache_mode: Literal["off", "exact", "semantic"] = "off"
    semantic_cache_threshold: float | None = Field(default=None, ge=0, le=2)
    embeddings_model: str = "openai:text-embedding-3-small"
    cache_ttl: int = Field(default=3600, ge=1)
    cache_scope: Literal["principal", "global"] = "principal"
    cache_max_entries: int = Field(default=10_000, ge=1)
    max_batch_size: int = Field(default=20, ge=1)
    batch_max_concurrency: int = Field(default=5, ge=1)
    # How the process runs under gunicorn (`gunicorn.conf.py`).
    host: str = "0.0.0.0"
    port: int = Field(default=8000, ge=1, le=65535)
    web_concurrency: int = Field(default=2, ge=1)
    prometheus_multiproc_dir: str | None = None

    @field_validator(
        "llm_fallback_model",
        "redis_url",
        "redis_host",
        "openai_base_url",
        "jwt_jwks_url",
        "jwt_issuer",
        "jwt_audience",
        "prometheus_multiproc_dir",
    )
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("redis_url")
    @classmethod
    def _a_redis_scheme(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("REDIS_URL must start with redis://, rediss:// or unix://")
        return value

    @field_validator("jwt_algorithms")
    @classmethod
    def _public_key_algorithms_only(cls, value: str) -> str:
        """A JWKS holds public keys: `none` or an HMAC algorithm would let anyone who has
        read the JWKS sign tokens."""
        algorithms = [name.strip() for name in value.split(",") if name.strip()]
        unsafe = [n for n in algorithms if n.lower() == "none" or n.upper().startswith("HS")]
        if unsafe or not algorithms:
            raise ValueError(f"JWT_ALGORITHMS may hold only public-key algorithms, not {unsafe}")
        return ",".join(algorithms)

    @property
    def jwt_algorithm_list(self) -> list[str]:
        return self.jwt_algorithms.split(",")

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]

    @property
    def playground_enabled(self) -> bool:
        """The playground and `/docs` are on by default outside production only."""
        if self.enable_playground is None:
            return self.app_env != "production"
        return self.enable_playground

    @property
    def resolved_redis_url(self) -> str | None:
        """`REDIS_URL`, else one built from `REDIS_HOST`/`REDIS_PORT`, else None (embedded)."""
        if self.redis_url:
            return self.redis_url
        if self.redis_host:
            return f"redis://{self.redis_host}:{self.redis_port}/0"
        return None

    @property
    def reservation_ttl(self) -> float:
        """How long a budget reservation lives unsettled: `BUDGET_RESERVATION_TTL`, else the
        longest a request may run (a full batch's rounds of session wait and deadline) plus a
        margin, so only a turn that died holding it (a killed worker) sees it lapse."""
        if self.budget_reservation_ttl is not None:
            return self.budget_reservation_ttl
        return self.longest_request_seconds(self.request_timeout) + RESERVATION_MARGIN_SECONDS

    def longest_request_seconds(self, deadline: float) -> float:
        """A full batch's turns, `BATCH_MAX_CONCURRENCY` at a time, each waiting up to
        `QUEUE_TIMEOUT` for its session, then running up to `deadline`."""
        rounds = math.ceil(self.max_batch_size / self.batch_max_concurrency)
        return rounds * (self.queue_timeout + deadline)

    @property
    def concurrency_stripes(self) -> int:
        """Unset: one stripe on a single Redis, eight (spread over the shards) on a cluster."""
        if self.global_concurrency_stripes is not None:
            return self.global_concurrency_stripes
        return 8 if self.redis_cluster else 1

    @property
    def overview_stripes(self) -> int:
        """Unset: one stripe on a single Redis, eight (spread over the shards) on a cluster."""
        if self.usage_overview_stripes is not None:
            return self.usage_overview_stripes
        return 8 if self.redis_cluster else 1

    @property
    def trusts_user_header(self) -> bool:
        """Whether `X-User-Id` may name the principal: with `AUTH_MODE=none`, outside
        production only (a client can set it to anything)."""
        return self.auth_mode == "none" and self.app_env != "production"


def read_toml_setting(path: Path, setting: str, error: type[ValueError]) -> dict[str, Any]:
    """The TOML file a setting names (`PROMPT_FILE`, `ROUTES_FILE`), or `error` naming the
    setting, the file and what is wrong with it."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise error(f"{setting} {path}: {exc}") from None
