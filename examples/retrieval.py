"""A retrieval route with memory: it answers from a few local documents.

The documents are embedded with the embeddings graphgate's semantic cache uses
(`EMBEDDINGS_MODEL`) and indexed on first use: in a Redis vector index (RedisVL) when
`REDIS_URL` is set, in LangChain's in-memory vector store otherwise.
"""

from __future__ import annotations

import asyncio
import hashlib
from operator import itemgetter
from pathlib import Path
from typing import Any, Protocol

from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import Runnable, RunnableLambda, RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore
from redisvl.index import AsyncSearchIndex
from redisvl.query import VectorQuery
from redisvl.redis.utils import array_to_buffer
from redisvl.schema import IndexSchema

from graphs.cache.embeddings import build_embeddings
from graphs.settings import Settings

DOCUMENTS = Path(__file__).parent / "documents"
RESULTS = 2
PROMPT = ChatPromptTemplate.from_messages(
    [
        ("system", "Answer from these notes only; say so when they do not cover it.\n\n{context}"),
        MessagesPlaceholder("history", optional=True),
        MessagesPlaceholder("turn"),
    ]
)


def documents() -> list[str]:
    return [path.read_text(encoding="utf-8").strip() for path in sorted(DOCUMENTS.glob("*.md"))]


class DocumentIndex(Protocol):
    async def search(self, question: str) -> list[str]: ...


class InMemoryIndex:
    """LangChain's in-memory vector store, filled on first use (embedded mode)."""

    def __init__(self, embeddings: Embeddings) -> None:
        self._store = InMemoryVectorStore(embeddings)
        self._filled = asyncio.Lock()
        self._ready = False

    async def search(self, question: str) -> list[str]:
        async with self._filled:
            if not self._ready:
                await self._store.aadd_texts(await asyncio.to_thread(documents))
                self._ready = True
        found = await self._store.asimilarity_search(question, k=RESULTS)
        return [document.page_content for document in found]


class RedisIndex:
    """A RedisVL vector index, created and filled on first use; shared by every worker."""

    def __init__(self, embeddings: Embeddings, redis_url: str, prefix: str) -> None:
        self._embeddings = embeddings
        self._redis_url = redis_url
        self._name = f"{prefix}examples_docs"
        self._index: AsyncSearchIndex | None = None
        self._opening = asyncio.Lock()

    async def _opened(self) -> AsyncSearchIndex:
        async with self._opening:
            if self._index is None:
                texts = await asyncio.to_thread(documents)
                vectors = await self._embeddings.aembed_documents(texts)
                schema = IndexSchema.from_dict(
                    {
                        "index": {"name": self._name, "prefix": self._name},
                        "fields": [
                            {"name": "text", "type": "text"},
                            {
                                "name": "embedding",
                                "type": "vector",
                                "attrs": {
                                    "dims": len(vectors[0]),
                                    "algorithm": "flat",
                                    "distance_metric": "cosine",
                                },
                            },
                        ],
                    }
                )
                index = AsyncSearchIndex(schema, redis_url=self._redis_url)
                await index.create(overwrite=False)
                await index.load(
                    [
                        {"text": text, "embedding": array_to_buffer(vector, "float32")}
                        for text, vector in zip(texts, vectors, strict=True)
                    ],
                    keys=[
                        f"{self._name}:{hashlib.sha256(t.encode()).hexdigest()[:16]}" for t in texts
                    ],
                )
                self._index = index
        return self._index

    async def search(self, question: str) -> list[str]:
        index = await self._opened()
        vector = await self._embeddings.aembed_query(question)
        query = VectorQuery(vector, "embedding", return_fields=["text"], num_results=RESULTS)
        return [str(hit["text"]) for hit in await index.query(query)]


def document_index(settings: Settings) -> DocumentIndex:
    embeddings = build_embeddings(settings)
    url = settings.resolved_redis_url
    if url is None:
        return InMemoryIndex(embeddings)
    return RedisIndex(embeddings, url, settings.redis_prefix)


def make_chain(model: BaseChatModel) -> Runnable[dict[str, Any], Any]:
    """Retrieve for the question, then `prompt | model` with the notes in the system message."""
    index = document_index(Settings())

    async def notes(question: str) -> str:
        return "\n\n".join(await index.search(question))

    retrieve = itemgetter("question") | RunnableLambda(notes)
    return RunnablePassthrough.assign(context=retrieve) | PROMPT | model
