"""A chain that calls the model twice per turn: a draft, then an answer that reads it."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import Runnable, RunnableLambda


def make_chain(model: BaseChatModel) -> Runnable[dict[str, Any], Any]:
    async def draft_then_answer(chain_input: dict[str, Any]) -> AIMessage:
        question = chain_input["question"]
        draft = await model.ainvoke([HumanMessage(f"draft: {question}")])
        return await model.ainvoke([HumanMessage(f"answer from {draft.text}: {question}")])

    return RunnableLambda(draft_then_answer)
