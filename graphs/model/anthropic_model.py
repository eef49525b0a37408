"""Anthropic's chat model as graphgate builds it. Its own module, imported only when
`LLM_MODEL` or `LLM_FALLBACK_MODEL` names a Claude model: the anthropic SDK takes seconds to
import and tens of MB that a server without it should not pay for."""

from __future__ import annotations

import functools

import anthropic
from langchain_anthropic import ChatAnthropic

from graphs.model.attempts import count_attempt


class CountingChatAnthropic(ChatAnthropic):
    """ChatAnthropic whose HTTP client counts attempts, as ChatOpenAI's does through its
    `http_async_client`: langchain-anthropic takes no client, so this builds its own. Without
    the SDK's own OpenTelemetry spans: graphgate's model-call span is the call's
    (`graphs/telemetry/model_spans.py`), and a second one would count it twice."""

    @functools.cached_property
    def _async_client(self) -> anthropic.AsyncClient:
        params = dict(self._client_params)
        http_client = anthropic.DefaultAsyncHttpxClient(
            base_url=params["base_url"],
            timeout=params.get("timeout"),
            event_hooks={"request": [count_attempt]},
        )
        return anthropic.AsyncClient(**params, http_client=http_client, open_telemetry=False)
