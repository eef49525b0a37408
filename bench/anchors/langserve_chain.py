"""Anchor: a LangServe chain as its docs write one, `prompt | model | parser`, with no memory,
limits or usage."""

from __future__ import annotations

from fastapi import FastAPI
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langserve import add_routes

from bench.anchors.model import instant_model

prompt = ChatPromptTemplate.from_messages(
    [("system", "You are a helpful assistant."), ("human", "{question}")]
)
app = FastAPI()
add_routes(app, prompt | instant_model() | StrOutputParser(), path="/chat")


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
