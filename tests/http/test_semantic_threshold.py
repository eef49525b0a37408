"""The semantic cache's threshold belongs to an embeddings model: the one model measured here
(the packaged all-MiniLM-L6-v2) has a calibrated default that separates paraphrases from
different questions; any other model must be given `SEMANTIC_CACHE_THRESHOLD`, or the server
refuses to start with the semantic cache on."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bench.semantic_threshold import DIFFERENT, SAME
from graphs.cache.embeddings import LOCAL_MINILM, local_minilm
from graphs.cache.semantic_cache import (
    CALIBRATED_THRESHOLDS,
    cosine_distance,
    semantic_threshold,
)
from graphs.settings import Settings
from serving.startup_checks import configuration_problem
from tests.process.test_startup_refusal import UVICORN, refusal_line, start


def test_the_default_embeddings_model_needs_a_threshold_for_the_semantic_cache() -> None:
    problem = configuration_problem(Settings(cache_mode="semantic"))
    assert problem is not None
    assert "SEMANTIC_CACHE_THRESHOLD" in problem
    assert "openai:text-embedding-3-small" in problem


def test_a_threshold_set_for_an_unmeasured_model_is_used_as_given() -> None:
    settings = Settings(cache_mode="semantic", semantic_cache_threshold=0.35)
    assert configuration_problem(settings) is None
    assert semantic_threshold(settings) == 0.35


def test_the_measured_model_gets_its_calibrated_default() -> None:
    settings = Settings(cache_mode="semantic", embeddings_model=LOCAL_MINILM)
    assert configuration_problem(settings) is None
    assert semantic_threshold(settings) == CALIBRATED_THRESHOLDS[LOCAL_MINILM]


def test_without_the_semantic_cache_no_threshold_is_needed() -> None:
    assert configuration_problem(Settings(cache_mode="exact")) is None


def test_the_server_refuses_the_semantic_cache_on_an_uncalibrated_model() -> None:
    line = refusal_line(start(UVICORN, CACHE_MODE="semantic"))
    assert "SEMANTIC_CACHE_THRESHOLD" in line


@pytest.fixture(scope="module")
def minilm_distance() -> Callable[[str, str], float]:
    embeddings = local_minilm()

    def distance(a: str, b: str) -> float:
        va, vb = embeddings.embed_documents([a, b])
        return cosine_distance(va, vb)

    return distance


def test_the_calibrated_default_separates_paraphrases_from_different_questions(
    minilm_distance: Callable[[str, str], float],
) -> None:
    threshold = CALIBRATED_THRESHOLDS[LOCAL_MINILM]
    paraphrases = {pair: minilm_distance(*pair) for pair in SAME}
    different = {pair: minilm_distance(*pair) for pair in DIFFERENT}
    assert {pair: d for pair, d in paraphrases.items() if d > threshold} == {}
    assert {pair: d for pair, d in different.items() if d <= threshold} == {}
