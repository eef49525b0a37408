"""A chain route that offers the model a tool: its replies may be tool calls, which the client
runs and answers with tool messages in its next turn (an agent driven by its client)."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable
from langchain_core.tools import tool


@tool
def lookup(item: str) -> str:
    """Look an item up."""
    return f"found {item}"


PROMPT = ChatPromptTemplate.from_messages(
    [("system", "You plan with tools."), ("placeholder", "{history}"), ("placeholder", "{turn}")]
)


def make_chain(model: BaseChatModel) -> Runnable[dict[str, Any], Any]:
    return PROMPT | model.bind_tools([lookup])
