"""A model call nobody observes skips LangChain's run (`graphs/model/unobserved.py`), and still
sends the provider exactly what LangChain would: against the real OpenAI double, in process."""

from __future__ import annotations

from pydantic import BaseModel

from graphs.model.gateway_model import GatewayChatModel
from graphs.model.turn import Turn, running_turn
from graphs.route_services import build_services
from graphs.settings import Settings
from tests.conftest import PRIMARY_MODEL
from tests.upstream import Upstream


class Answer(BaseModel):
    """The structured answer a team's node asks graphgate's model for."""

    text: str


async def test_a_structured_output_call_sends_no_tracing_keys_to_the_provider(
    upstream: Upstream, marker: str
) -> None:
    settings = Settings(
        llm_model=PRIMARY_MODEL, openai_base_url=upstream.api_url, llm_fallback_model=None
    )
    model = GatewayChatModel(services=build_services(settings, None))
    upstream.behave(marker, tool_calls=[{"name": "Answer", "arguments": {"text": "hi"}}])
    with running_turn(Turn("p1")):
        answer = await model.with_structured_output(Answer).ainvoke(f"Say hi {marker}")
    assert answer == Answer(text="hi")
    (body,) = upstream.stats(marker)["bodies"]
    assert body["tools"][0]["function"]["name"] == "Answer"
    assert not {"ls_structured_output_format", "structured_output_format"} & set(body)
