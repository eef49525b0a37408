"""A model call nobody observes: no callback handler would be given its run (no LangSmith
tracer, no `astream_events` or `stream_log` reader, no LangGraph `messages` stream, no handler
of the route's own). LangChain still opens the run and walks every chunk through it:
`BaseChatModel.astream` costs about 9 us per token and the chain around it (`prompt | model`)
another 14 us, measured with the demo model, against 8.5 us for the model's own stream. Such a
call takes graphgate's own stream directly and returns the same chunks; one that is observed
goes through LangChain as always.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import AsyncCallbackManager
from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig, RunnableSequence

from graphs.telemetry.run_spans import RunSpans


def nobody_observes(config: RunnableConfig, model: Any = None) -> bool:
    """No handler would be given a run of `model` (or of a chain, with none) under `config`:
    LangChain's own answer, which reads the config's callbacks, the model's and the tracing
    settings of the environment."""
    manager = AsyncCallbackManager.configure(
        config.get("callbacks"),
        getattr(model, "callbacks", None),
        bool(getattr(model, "verbose", False)),
        config.get("tags"),
        getattr(model, "tags", None),
        config.get("metadata"),
        getattr(model, "metadata", None),
    )
    # graphgate's own spans of a run take no model or chain-step events (`RunSpans`).
    return not [handler for handler in manager.handlers if not isinstance(handler, RunSpans)]


def split_at_model(
    chain: Runnable[Any, Any],
    is_model: type,
) -> tuple[Runnable[Any, Any], Runnable[Any, Any]] | None:
    """A sequence that ends in a model of type `is_model` (bound or not) as its steps before the
    model and the model step: the model step streamed on the head's output yields what the
    sequence would, without the sequence's own per-chunk work."""
    if not isinstance(chain, RunnableSequence):
        return None
    model = chain.last
    bound = model.bound if isinstance(model, RunnableBinding) else model
    if not isinstance(bound, is_model):
        return None
    steps = chain.steps[:-1]
    return (steps[0] if len(steps) == 1 else RunnableSequence(*steps)), model


# What `with_structured_output` binds for LangChain's tracing, which `BaseChatModel` takes out
# before it calls the provider: a call with no run around it must take them out too.
TRACING_ONLY = ("ls_structured_output_format", "structured_output_format")


def provider_bound(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The bound keyword arguments a provider takes: those for LangChain's tracing left out."""
    return {key: value for key, value in kwargs.items() if key not in TRACING_ONLY}
