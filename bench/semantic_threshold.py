"""Where paraphrases and different questions fall in cosine distance for an embeddings model,
to choose `SEMANTIC_CACHE_THRESHOLD`: it must sit above the paraphrases and below the nearest
different question.

    .venv/bin/python -m bench.semantic_threshold          # EMBEDDINGS_MODEL, default local MiniLM
"""

from __future__ import annotations

import os

from graphs.cache.embeddings import LOCAL_MINILM, build_embeddings
from graphs.cache.semantic_cache import cosine_distance
from graphs.settings import Settings

SAME = [
    ("What is a vector database?", "what's a vector database"),
    ("What is a vector database?", "Explain vector databases"),
    ("How do I reset my password?", "how can I change my password"),
    ("What is the capital of France?", "capital city of france?"),
    ("How many days are in a leap year?", "number of days in a leap year"),
]
DIFFERENT = [
    ("What is a vector database?", "What is a relational database?"),
    ("How do I reset my password?", "How do I delete my account?"),
    ("What is the capital of France?", "What is the capital of Germany?"),
    ("How many days are in a leap year?", "How many days are in a week?"),
    ("What is a vector database?", "How do I bake bread?"),
]


def main() -> None:
    os.environ.setdefault("EMBEDDINGS_MODEL", LOCAL_MINILM)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    settings = Settings()
    embeddings = build_embeddings(settings)
    print(f"model: {settings.embeddings_model}")
    distances: dict[str, list[float]] = {"same meaning": [], "different meaning": []}
    for label, pairs in (("same meaning", SAME), ("different meaning", DIFFERENT)):
        for a, b in pairs:
            va, vb = embeddings.embed_documents([a, b])
            distance = cosine_distance(va, vb)
            distances[label].append(distance)
            print(f"{distance:6.3f}  {label:17}  {a!r} ~ {b!r}")
    widest_same = max(distances["same meaning"])
    nearest_different = min(distances["different meaning"])
    print(f"paraphrases up to {widest_same:.3f}; different questions from {nearest_different:.3f}")
    print(f"a threshold in ({widest_same:.3f}, {nearest_different:.3f}) separates them")


if __name__ == "__main__":
    main()
