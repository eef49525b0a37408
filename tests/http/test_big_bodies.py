"""A 50 MB body gets 413 whether its size is declared or only found while reading a chunked
body, the client sees that answer (not a reset connection), and the server holds none of it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.live_servers import Graphgate, StartGraphgate

FIFTY_MB = 50 * 1024 * 1024
CHUNK = b"x" * (1024 * 1024)


@pytest.fixture(scope="module")
def server(graphgate_factory: StartGraphgate) -> Graphgate:
    return graphgate_factory(fresh=True)


def rss_bytes(server: Graphgate) -> int:
    assert server.process.process is not None
    status = Path(f"/proc/{server.process.process.pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


def chunks() -> Iterator[bytes]:
    for _ in range(FIFTY_MB // len(CHUNK)):
        yield CHUNK


def assert_413(response: httpx.Response) -> None:
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_fifty_megabytes_declared_or_chunked_are_413_and_leave_rss_alone(server: Graphgate) -> None:
    url = f"{server.url}/chat/invoke"
    headers = {"Content-Type": "application/json"}
    warm = httpx.post(url, json={"input": {"question": "warm up"}}, timeout=30)
    assert warm.status_code == 200
    before = rss_bytes(server)
    declared = httpx.post(url, content=b"x" * FIFTY_MB, headers=headers, timeout=60)
    assert_413(declared)
    chunked = httpx.post(url, content=chunks(), headers=headers, timeout=60)
    assert "content-length" not in chunked.request.headers
    assert chunked.request.headers["transfer-encoding"] == "chunked"
    assert_413(chunked)
    grown = rss_bytes(server) - before
    print(f"RSS {before / 1e6:.1f} MB before, grew by {grown / 1e6:.2f} MB")  # for `pytest -s`
    assert grown < 10 * 1024 * 1024, f"RSS grew by {grown / 1e6:.1f} MB"
    assert httpx.get(f"{server.url}/health/live").status_code == 200
