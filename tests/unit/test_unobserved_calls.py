"""Which model calls skip LangChain's run machinery (`graphs/model/unobserved.py`): only those no
handler would be given, and only the model step of a chain that ends in graphgate's model."""

from __future__ import annotations

from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableBinding
from langchain_core.tracers.context import collect_runs

from graphs.model.demo_model import DemoChatModel
from graphs.model.unobserved import nobody_observes, split_at_model

PROMPT = ChatPromptTemplate.from_messages([("human", "{question}")])


class Tokens(AsyncCallbackHandler):
    """A handler of the route's own, as LangSmith's tracer or `astream_events`' reader is."""


def test_a_call_with_no_handler_anywhere_is_unobserved() -> None:
    assert nobody_observes({}, DemoChatModel())
    assert nobody_observes({"callbacks": [], "tags": ["t"], "metadata": {"m": 1}})


def test_a_handler_in_the_config_or_on_the_model_observes_the_call() -> None:
    assert not nobody_observes({"callbacks": [Tokens()]}, DemoChatModel())
    assert not nobody_observes({}, DemoChatModel(callbacks=[Tokens()]))


def test_a_run_collector_of_the_context_observes_every_call() -> None:
    """Handlers that LangChain adds from context variables (`collect_runs`, LangSmith's
    `tracing_v2_enabled`) count as they do for LangChain's own runs."""
    with collect_runs():
        assert not nobody_observes({}, DemoChatModel())


def test_only_a_sequence_ending_in_the_model_splits_at_it() -> None:
    model = DemoChatModel()
    head, step = split_at_model(PROMPT | model, DemoChatModel) or (None, None)
    assert head is PROMPT
    assert step is model
    bound = model.bind(max_tokens=5)
    head, step = split_at_model(PROMPT | bound, DemoChatModel) or (None, None)
    assert head is PROMPT
    assert isinstance(step, RunnableBinding)
    assert step.kwargs == {"max_tokens": 5}
    assert split_at_model(PROMPT | model | StrOutputParser(), DemoChatModel) is None
    assert split_at_model(model, DemoChatModel) is None
