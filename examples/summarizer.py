"""A single-turn route with its own prompt: it summarises the text it is sent."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable

PROMPT = ChatPromptTemplate.from_messages(
    [
        ("system", "Summarise the user's text in one short sentence. Add nothing of your own."),
        ("human", "{question}"),
    ]
)


def make_chain(model: BaseChatModel) -> Runnable[dict[str, Any], str]:
    """`prompt | model | parser`: graphgate's model brings the limits, retries and usage."""
    return PROMPT | model | StrOutputParser()
