"""The pure pieces of a turn's chain, without servers: prompt and route files, generation
parameters, the demo model's reply, history fitted to the token budget, and a turn's summed
metadata."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from graphs.errors import InvalidInput
from graphs.model.demo_model import DemoChatModel, demo_reply
from graphs.model.factory import ModelSpec
from graphs.model.params import read_params
from graphs.model.provider_calls import anthropic_tool_choice, provider_messages
from graphs.model.tokens import TokenCounter, load_encoding
from graphs.model.turn import ModelCall, Turn
from graphs.nodes.guard import validate_turn
from graphs.prompt import PromptFileError, load_prompt_file, system_prompt
from graphs.route_services import semantic_index_name
from graphs.routes import RouteFileError, load_route_specs
from graphs.settings import Settings
from scripts.processes import ROOT


@pytest.fixture(scope="module")
def counter() -> TokenCounter:
    return TokenCounter(load_encoding("gpt-4o-mini", None))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prompt.toml"
    path.write_text(text)
    return path


def test_a_prompt_file_renders_history_and_question(tmp_path: Path) -> None:
    prompt = load_prompt_file(
        write(
            tmp_path,
            'messages = [["system", "Be brief {{really}}."], ["placeholder", "{history}"],'
            ' ["human", "Q: {question}"]]',
        )
    )
    rendered = prompt.format_messages(
        history=[HumanMessage("a"), AIMessage("b")], turn=[], question="c"
    )
    assert [(m.type, m.text) for m in rendered] == [
        ("system", "Be brief {really}."),
        ("human", "a"),
        ("ai", "b"),
        ("human", "Q: c"),
    ]


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ('messages = [["system", "x {name}"], ["placeholder", "{turn}"]]', "unknown variables"),
        ('messages = [["system", "x"], ["placeholder", "{turn}"]]', "{history}"),
        ('messages = [["wizard", "x"]]', "unknown role"),
        ('messages = [["system", "x"], ["placeholder", "{history}"]]', "{turn} or {question}"),
        ("messages = [", "PROMPT_FILE"),
        ("other = 1", "messages"),
    ],
)
def test_a_prompt_file_that_cannot_serve_a_session_is_refused_by_name(
    tmp_path: Path, text: str, complaint: str
) -> None:
    with pytest.raises(PromptFileError, match="PROMPT_FILE") as refused:
        load_prompt_file(write(tmp_path, text))
    assert complaint in str(refused.value)


def test_a_system_prompt_is_taken_literally() -> None:
    rendered = system_prompt("Answer as {json}.").format_messages(
        history=[], turn=[HumanMessage("q")], question="q"
    )
    assert rendered == [SystemMessage("Answer as {json}."), HumanMessage("q")]


def test_parameters_are_read_within_bounds_and_stop_may_be_a_string() -> None:
    params = read_params({"temperature": 0.5, "stop": "END", "other": 1}, 100)
    assert params.call_kwargs() == {"temperature": 0.5, "stop": ["END"]}


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"temperature": 3}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"max_tokens": 101}, "MAX_OUTPUT_TOKENS"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"seed": "x"}, "seed"),
    ],
)
def test_a_parameter_out_of_bounds_is_invalid_input_naming_it(
    values: dict[str, object], named: str
) -> None:
    with pytest.raises(InvalidInput, match=named):
        read_params(values, 100)


def test_the_demo_reply_numbers_the_turn_and_quotes_earlier_ones() -> None:
    messages = [HumanMessage("I am Ada."), AIMessage("hi"), HumanMessage("Who am I?")]
    assert "".join(demo_reply(messages)) == (
        '(demo model) Turn 2. Earlier you said: "I am Ada.". You said: Who am I?'
    )


def test_the_demo_reply_honours_stop_and_max_tokens() -> None:
    messages = [HumanMessage("one two three")]
    assert "".join(demo_reply(messages, stop=["said"])) == "(demo model) Turn 1. You"
    assert demo_reply(messages, max_tokens=2) == ["(demo", " model)"]


async def test_the_demo_stream_sends_the_whole_reply_token_by_token_and_counts_them() -> None:
    model = DemoChatModel(tokens_per_second=0)
    messages = [HumanMessage("spaced  out\n words\tand tabs " * 3)]
    for options in ({}, {"stop": ["and"]}, {"max_tokens": 4}):
        whole = await model.ainvoke(messages, **options)
        chunks = [chunk async for chunk in model.astream(messages, **options)]
        streamed = [str(chunk.content) for chunk in chunks if chunk.content]
        assert "".join(streamed) == whole.content
        assert streamed == demo_reply(messages, **options)
        assert chunks[-1].usage_metadata == whole.usage_metadata
        assert whole.usage_metadata is not None
        assert whole.usage_metadata["output_tokens"] == len(streamed)


def test_a_turns_metadata_sums_every_model_call() -> None:
    turn = Turn("alice")
    usage = {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
    turn.calls.append(ModelCall("openai:a", usage, 0.25, retries=1))
    turn.calls.append(ModelCall("openai:b", usage, 0.5, fallback_used=True, retries=None))
    metadata = turn.metadata()
    assert metadata["usage"] == {"input_tokens": 20, "output_tokens": 10, "total_tokens": 30}
    assert (metadata["model"], metadata["cost_usd"], metadata["retries"]) == ("openai:b", 0.75, 1)
    assert (metadata["fallback_used"], metadata["model_calls"], metadata["cache_hit"]) == (
        True,
        2,
        False,
    )
    # An unpriced call adds nothing: the priced calls keep their cost.
    turn.calls.append(ModelCall("openai:c", usage, None))
    assert turn.metadata()["cost_usd"] == 0.75
    assert Turn("bob", calls=[ModelCall("openai:c", usage, None)]).metadata()["cost_usd"] is None


def routes_file(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "routes.toml"
    path.write_text(text)
    return Settings(routes_file=path)


def test_the_route_file_adds_routes_after_the_built_in_chat(tmp_path: Path) -> None:
    settings = routes_file(
        tmp_path,
        '[routes.sum]\npath = "/sum"\nchain = "examples.summarizer:make_chain"\n'
        "sessions = false\n[routes.sum.limits]\nrate_limit_max = 3\n",
    )
    chat, summarize = load_route_specs(settings)
    assert (chat.name, chat.path, chat.chain) == ("chat", "/chat", None)
    assert (summarize.path, summarize.sessions) == ("/sum", False)
    assert summarize.settings(settings).rate_limit_max == 3
    assert summarize.chain_factory() is not None


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ('[routes.a]\npath = "/v1/a"\nchain = "m:f"', "graphgate's own path"),
        ('[routes.a]\npath = "/x"\nchain = "m:f"\n[routes.b]\npath = "/x"\nchain = "m:f"', "two"),
        ('[routes.a]\npath = "/x"\nchain = "m:f"\ncolour = 1', "colour"),
        ('[routes.A]\npath = "/x"', "route 'A'"),
        ('[routes.a]\npath = "x"', "path"),
        ("routes = 1", "[routes.<name>]"),
        ('[routes.a]\npath = "/threads"\nchain = "m:f"', "graphgate's own path"),
        ('[routes.a]\nchain = "m:f"', "needs a `path`"),
        ('[routes.a]\ngraph = "m:f"\nchain = "m:g"', "not both"),
        ('[routes.a]\ngraph = "m:f"\npath = "/a"', "has no `path`"),
        ('[routes.chat]\ngraph = "m:f"', "`chat` is a chain"),
    ],
)
def test_a_route_file_that_cannot_be_served_is_refused_by_name(
    tmp_path: Path, text: str, complaint: str
) -> None:
    with pytest.raises(RouteFileError, match="ROUTES_FILE") as refused:
        load_route_specs(routes_file(tmp_path, text))
    assert complaint in str(refused.value)


def test_a_graph_route_has_no_path_and_names_its_graph(tmp_path: Path) -> None:
    chat, agent = load_route_specs(
        routes_file(tmp_path, '[routes.agent]\ngraph = "examples.agent:make_graph"\n')
    )
    assert (chat.kind, agent.kind) == ("chat", "graph")
    assert (agent.path, agent.chain, agent.sessions) == (None, None, True)
    assert agent.chain_factory() is None
    assert callable(agent.graph_factory())


def test_a_chain_that_cannot_be_imported_names_the_route(tmp_path: Path) -> None:
    (spec,) = load_route_specs(
        routes_file(tmp_path, '[routes.chat]\npath = "/chat"\nchain = "nowhere:make"')
    )
    with pytest.raises(RouteFileError, match="route chat: cannot import nowhere:make"):
        spec.chain_factory()


def test_langgraph_json_lists_every_example_route() -> None:
    settings = Settings(routes_file=ROOT / "examples" / "routes.toml")
    listed = json.loads((ROOT / "examples" / "langgraph.json").read_text())["graphs"]
    assert sorted(listed) == sorted(spec.name for spec in load_route_specs(settings))
    assert all(entry.endswith(f"langgraph_entry.py:{name}") for name, entry in listed.items())


def test_a_question_only_prompt_needs_a_turn_that_ends_with_a_question(
    counter: TokenCounter,
) -> None:
    tool_turn = [AIMessage("", tool_calls=[{"name": "f", "args": {}, "id": "c1"}])]
    tool_turn.append(ToolMessage("42", tool_call_id="c1"))  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="takes a question"):
        validate_turn("", tool_turn, counter, 1000, question_only=True)
    assert len(validate_turn("", tool_turn, counter, 1000).messages) == 2


def test_each_embeddings_model_has_its_own_semantic_index() -> None:
    """Vectors of another size cannot share an index (RedisVL refuses to open it)."""
    names = {
        semantic_index_name(Settings(embeddings_model=model))
        for model in ("local:all-MiniLM-L6-v2", "openai:text-embedding-3-small")
    }
    assert len(names) == 2
    assert all(name.startswith("graphgate:semantic_cache:") for name in names)


def test_openai_tool_choice_in_anthropics_terms() -> None:
    assert anthropic_tool_choice("required") == "any"
    assert anthropic_tool_choice("auto") == "auto"
    assert anthropic_tool_choice("none") == {"type": "none"}
    named = {"type": "function", "function": {"name": "get_weather"}}
    assert anthropic_tool_choice(named) == "get_weather"


def test_anthropic_gets_one_system_prompt_first() -> None:
    messages = [SystemMessage("Be brief."), HumanMessage("hi"), SystemMessage("In French.")]
    claude = ModelSpec("anthropic", "claude-3-5-haiku")
    assert provider_messages(claude, messages) == [
        SystemMessage("Be brief.\n\nIn French."),
        HumanMessage("hi"),
    ]
    assert provider_messages(ModelSpec("openai", "gpt-4o-mini"), messages) == messages
