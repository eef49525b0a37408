"""The chat graph: guard -> limit -> llm -> persist."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from graphs.model.gateway_model import GatewayChatModel
from graphs.nodes.guard import make_guard
from graphs.nodes.limit import make_limit
from graphs.nodes.llm import make_llm
from graphs.nodes.persist import make_persist
from graphs.route_services import RouteServices
from graphs.routes import ChainFactory
from graphs.state import ChatInput, ChatOutput, ChatState

ChatGraph = CompiledStateGraph[ChatState, None, ChatInput, ChatOutput]


def chat_chain(services: RouteServices) -> ChainFactory:
    """The built-in chat: the route's prompt, then the model."""
    prompt = services.prompt
    if prompt is None:
        raise ValueError("the built-in chat needs a prompt (SYSTEM_PROMPT or PROMPT_FILE)")

    def make_chain(model: BaseChatModel) -> Runnable[dict[str, Any], Any]:
        return prompt | model

    return make_chain


def build_chat_graph(
    services: RouteServices,
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    chain: ChainFactory | None = None,
) -> ChatGraph:
    """guard -> limit -> llm -> persist around the chain that `chain` makes from graphgate's
    model (default: the built-in chat)."""
    make_chain = chain or chat_chain(services)
    builder = StateGraph(ChatState, input_schema=ChatInput, output_schema=ChatOutput)
    builder.add_node("guard", make_guard(services))
    builder.add_node("limit", make_limit(services))
    builder.add_node("llm", make_llm(services, make_chain(GatewayChatModel(services=services))))
    builder.add_node("persist", make_persist(services))
    builder.add_edge(START, "guard")
    builder.add_edge("guard", "limit")
    builder.add_edge("limit", "llm")
    builder.add_edge("llm", "persist")
    builder.add_edge("persist", END)
    return builder.compile(checkpointer=checkpointer, name="chat")
