"""`/metrics` under gunicorn with 2 workers: parseable, request and token counters equal to the
traffic sent and the upstream's usage; the workers' metrics folder goes when gunicorn does."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import PRIMARY_MODEL
from tests.live_servers import StartGraphgate
from tests.sse import post_stream
from tests.upstream import Upstream


def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    response = httpx.get(f"{url}/metrics")
    assert response.status_code == 200
    samples: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[sample.name].append((sample.labels, sample.value))
    return samples


def test_counters_match_the_traffic_and_the_upstream_usage(
    graphgate_factory: StartGraphgate, upstream: Upstream, user: str, marker: str
) -> None:
    server = graphgate_factory("redis", fresh=True, workers=2)
    try:
        headers = {"X-User-Id": user}
        for turn in range(6):
            response = httpx.post(
                f"{server.url}/chat/invoke",
                json={"input": {"question": f"q{turn} {marker}"}},
                headers=headers,
            )
            assert response.status_code == 200
        for turn in range(3):
            result = post_stream(
                f"{server.url}/chat/stream", {"input": {"question": f"s{turn} {marker}"}}, headers
            )
            assert result.named("end")
        refused = httpx.post(f"{server.url}/chat/invoke", json={"input": {"question": ""}})
        assert refused.status_code == 400
        samples = scrape(server.url)
    finally:
        server.process.stop()
    requests = {
        (labels["route"], labels["status"]): value
        for labels, value in samples["graphgate_http_requests_total"]
    }
    assert requests == {
        ("/chat/invoke", "200"): 6,
        ("/chat/stream", "200"): 3,
        ("/chat/invoke", "400"): 1,
    }
    usage = upstream.stats(marker)["usage"]
    tokens = {
        labels["kind"]: value
        for labels, value in samples["graphgate_tokens_total"]
        if labels["model"] == f"openai:{PRIMARY_MODEL}"
    }
    assert tokens == {
        "input": sum(u["prompt_tokens"] for u in usage),
        "output": sum(u["completion_tokens"] for u in usage),
    }
    refusals = {labels["code"]: value for labels, value in samples["graphgate_refusals_total"]}
    assert refusals == {"invalid_input": 1}
    ttft = [v for labels, v in samples["graphgate_time_to_first_token_seconds_count"]]
    assert sum(ttft) == 9


def test_gunicorn_removes_the_metrics_folder_it_made_when_it_exits(
    graphgate_factory: StartGraphgate, tmp_path: Path
) -> None:
    # A temporary folder of its own: other workers' servers make theirs in /tmp meanwhile.
    server = graphgate_factory("redis", fresh=True, workers=1, TMPDIR=str(tmp_path))
    made = set(tmp_path.glob("graphgate-metrics-*"))
    assert len(made) == 1
    assert server.process.stop() == 0
    assert not any(folder.exists() for folder in made)
