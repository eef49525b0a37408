"""The model factory: names to providers, and the demo model when no upstream is configured."""

from __future__ import annotations

import subprocess
import sys

import pytest
from langchain_anthropic import ChatAnthropic
from langchain_openai import ChatOpenAI

from graphs.model.demo_model import DemoChatModel
from graphs.model.factory import ModelSpec, build_chat_model, parse_model_spec
from graphs.settings import Settings
from scripts.processes import ROOT, child_env

CONFIGURED = Settings(openai_base_url="http://127.0.0.1:9/v1", anthropic_api_key="k")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("gpt-4o-mini", ModelSpec("openai", "gpt-4o-mini")),
        ("claude-3-5-haiku-latest", ModelSpec("anthropic", "claude-3-5-haiku-latest")),
        ("anthropic:claude-x", ModelSpec("anthropic", "claude-x")),
        ("openai:llama3", ModelSpec("openai", "llama3")),
        ("demo", ModelSpec("demo", "demo")),
    ],
)
def test_model_names_resolve_to_providers(name: str, expected: ModelSpec) -> None:
    assert parse_model_spec(name, CONFIGURED) == expected


def test_an_openai_model_without_key_or_base_url_is_the_demo_model() -> None:
    assert parse_model_spec("gpt-4o-mini", Settings()).provider == "demo"


def test_an_unknown_provider_is_refused_at_start_up() -> None:
    with pytest.raises(ValueError, match="unknown model provider"):
        parse_model_spec("mistral:large", CONFIGURED)


def test_providers_get_the_configured_retries_and_attempt_timeout() -> None:
    settings = Settings(
        openai_base_url="http://127.0.0.1:9/v1",
        anthropic_api_key="k",
        llm_max_retries=4,
        llm_attempt_timeout=7,
    )
    openai = build_chat_model(ModelSpec("openai", "gpt-x"), settings)
    anthropic = build_chat_model(ModelSpec("anthropic", "claude-x"), settings)
    assert isinstance(openai, ChatOpenAI)
    assert (openai.max_retries, openai.request_timeout) == (4, 7)
    assert isinstance(anthropic, ChatAnthropic)
    assert (anthropic.max_retries, anthropic.default_request_timeout) == (4, 7)
    assert isinstance(build_chat_model(ModelSpec("demo", "demo"), settings), DemoChatModel)


SDK_LOADED = """
import sys
import server
from graphs.model.factory import build_chat_model, parse_model_spec
from graphs.settings import Settings
settings = Settings(openai_base_url="http://127.0.0.1:9/v1", anthropic_api_key="k")
build_chat_model(parse_model_spec(sys.argv[1], settings), settings)
print([sdk for sdk in ("langchain_openai", "anthropic", "jwt") if sdk in sys.modules])
"""


@pytest.mark.parametrize(
    ("model", "loaded"),
    [("demo", "[]"), ("gpt-4o-mini", "['langchain_openai']"), ("claude-x", "['anthropic']")],
)
def test_a_provider_sdk_is_imported_only_for_a_model_of_its_own(model: str, loaded: str) -> None:
    """Each takes tens of MB and up to seconds to import: a server without the provider's
    model does not pay, nor one without JWTs for PyJWT."""
    result = subprocess.run(
        [sys.executable, "-c", SDK_LOADED, model],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert result.stdout.strip().splitlines()[-1] == loaded
