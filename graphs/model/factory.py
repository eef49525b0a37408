"""The model factory: a `provider:model` name becomes a LangChain chat model.

Retries live in the provider SDKs (openai, anthropic): `max_retries` extra attempts with
exponential backoff and jitter, honouring the upstream's `Retry-After`; `timeout` bounds each
attempt. The fallback between models and the overall deadline live in the llm node.
"""

from __future__ import annotations

from dataclasses import dataclass

from langchain_core.language_models import BaseChatModel

from graphs.model.attempts import count_attempt
from graphs.model.demo_model import DEMO_MODEL_NAME, DemoChatModel
from graphs.settings import Settings

PROVIDERS = ("openai", "anthropic", DEMO_MODEL_NAME)


@dataclass(frozen=True)
class ModelSpec:
    provider: str
    name: str

    @property
    def label(self) -> str:
        return f"{self.provider}:{self.name}"


def parse_model_spec(spec: str, settings: Settings) -> ModelSpec:
    """`provider:model`, or a bare model name whose provider is inferred (claude-* is Anthropic).

    An OpenAI model with neither an API key nor a base URL becomes the offline demo model.
    """
    provider, _, name = spec.partition(":")
    if not name:
        name = provider
        provider = "anthropic" if name.startswith("claude") else "openai"
        if name == DEMO_MODEL_NAME:
            provider = DEMO_MODEL_NAME
    if provider not in PROVIDERS:
        raise ValueError(f"unknown model provider {provider!r} in {spec!r}; use {PROVIDERS}")
    if provider == "openai" and not (settings.openai_api_key or settings.openai_base_url):
        return ModelSpec(DEMO_MODEL_NAME, DEMO_MODEL_NAME)
    return ModelSpec(provider, name)


def configured_specs(settings: Settings) -> list[ModelSpec]:
    """The primary model, then the fallback if one is set; ValueError for an unknown provider."""
    specs = [parse_model_spec(settings.llm_model, settings)]
    if settings.llm_fallback_model:
        specs.append(parse_model_spec(settings.llm_fallback_model, settings))
    return specs


def build_chat_model(spec: ModelSpec, settings: Settings) -> BaseChatModel:
    """A chat model for `spec` with the configured retries and per-attempt timeout."""
    if spec.provider == "openai":
        # Imported only when a model is OpenAI's: langchain-openai costs about 24 MB of memory
        # and 80 ms of start-up, which a server of the demo model or of Claude need not pay.
        import openai
        from langchain_openai import ChatOpenAI

        return ChatOpenAI(
            model=spec.name,
            api_key=settings.openai_api_key or "unused",  # a local server needs no key
            base_url=settings.openai_base_url,
            max_retries=settings.llm_max_retries,
            timeout=settings.llm_attempt_timeout,
            stream_usage=True,
            http_async_client=openai.DefaultAsyncHttpxClient(
                event_hooks={"request": [count_attempt]}
            ),
        )
    if spec.provider == "anthropic":
        if settings.anthropic_api_key is None:
            raise ValueError(f"{spec.label} needs ANTHROPIC_API_KEY")
        # Imported only when a model is Anthropic's: its SDK is a large import.
        from graphs.model.anthropic_model import CountingChatAnthropic

        return CountingChatAnthropic(
            model=spec.name,
            api_key=settings.anthropic_api_key,
            base_url=settings.anthropic_base_url,
            max_retries=settings.llm_max_retries,
            default_request_timeout=settings.llm_attempt_timeout,
            timeout=settings.llm_attempt_timeout,
            stop=None,
        )
    return DemoChatModel(tokens_per_second=settings.demo_tokens_per_second)
