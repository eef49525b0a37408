"""AUTH_MODE=api_key: keys made by the CLI, in a keys file and in Redis, on every route and
through every client; revocation across workers; per-key limits; and the principal that counts
is the key's, whatever headers a client adds."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import redis
from langserve import RemoteRunnable

from scripts.processes import ROOT, child_env
from tests.conftest import ApiKey, create_key
from tests.live_servers import Graphgate, StartGraphgate
from tests.sse import post_stream


@pytest.fixture(scope="module")
def file_server(graphgate_factory: StartGraphgate, keys_file: Path) -> Graphgate:
    return graphgate_factory(AUTH_MODE="api_key", API_KEYS_FILE=str(keys_file))


@pytest.fixture(scope="module")
def redis_server(graphgate_factory: StartGraphgate) -> Graphgate:
    return graphgate_factory("redis", AUTH_MODE="api_key")


@pytest.fixture
def file_key(keys_file: Path) -> ApiKey:
    return create_key(f"p-{uuid.uuid4().hex[:10]}", "--file", str(keys_file))


@pytest.fixture
def redis_key(redis_url: str) -> ApiKey:
    return create_key(f"p-{uuid.uuid4().hex[:10]}", redis_url=redis_url)


def invoke(server: Graphgate, headers: dict[str, str], question: str = "hi") -> httpx.Response:
    body = {"input": {"question": question}}
    return httpx.post(f"{server.url}/chat/invoke", json=body, headers=headers, timeout=30)


def assert_unauthenticated(response: httpx.Response) -> None:
    """401 with the challenge and the error body (OpenAI's shape under /v1)."""
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "unauthenticated"
    assert response.headers["X-Trace-Id"] in error.get("trace_id", error["message"])
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("store", ["file", "redis"])
def test_no_key_and_a_wrong_key_are_401_with_a_challenge(
    store: str, file_server: Graphgate, redis_server: Graphgate
) -> None:
    server = file_server if store == "file" else redis_server
    assert_unauthenticated(invoke(server, {}))
    assert_unauthenticated(invoke(server, {"Authorization": "Bearer gg_not-a-key"}))
    assert_unauthenticated(invoke(server, {"X-API-Key": "gg_not-a-key"}))
    assert_unauthenticated(invoke(server, {"Authorization": "Basic dXNlcjpwYXNz"}))
    assert_unauthenticated(httpx.get(f"{server.url}/usage"))
    assert_unauthenticated(httpx.get(f"{server.url}/chat/sessions/s1"))
    assert_unauthenticated(httpx.get(f"{server.url}/v1/models"))
    assert httpx.get(f"{server.url}/health/live").status_code == 200
    assert httpx.get(f"{server.url}/health/ready").status_code == 200


@pytest.mark.parametrize("store", ["file", "redis"])
def test_a_valid_key_works_on_invoke_batch_stream_events_sessions_and_usage(
    store: str, request: pytest.FixtureRequest, marker: str
) -> None:
    server: Graphgate = request.getfixturevalue(f"{store}_server")
    key: ApiKey = request.getfixturevalue(f"{store}_key")
    config = {"configurable": {"session_id": "k1"}}
    body: dict[str, Any] = {"input": {"question": f"first {marker}"}, "config": config}
    invoked = httpx.post(f"{server.url}/chat/invoke", json=body, headers=key.headers, timeout=30)
    assert invoked.json()["output"]["content"] == f"Echo: first {marker}"
    batch = {"inputs": [{"question": f"b{i} {marker}"} for i in range(2)]}
    batched = httpx.post(f"{server.url}/chat/batch", json=batch, headers=key.headers, timeout=30)
    assert [o["content"] for o in batched.json()["output"]] == [
        f"Echo: b0 {marker}",
        f"Echo: b1 {marker}",
    ]
    x_api_key = {"X-API-Key": key.key}
    streamed = post_stream(f"{server.url}/chat/stream", body, x_api_key)
    assert streamed.status == 200
    assert streamed.named("end") == [None]  # the end event, which carries no data
    events = post_stream(f"{server.url}/chat/stream_events", body, key.headers)
    assert events.status == 200
    assert events.named("data")
    session = httpx.get(f"{server.url}/chat/sessions/k1", headers=key.headers).json()
    assert len(session["messages"]) == 6
    usage = httpx.get(f"{server.url}/usage", headers=key.headers).json()
    assert usage["principal"] == key.principal
    assert usage["days"][0]["total"]["requests"] == 5


@pytest.mark.parametrize("store", ["file", "redis"])
def test_the_clients_carry_a_key_remote_runnable_and_the_openai_sdk(
    store: str, request: pytest.FixtureRequest, marker: str
) -> None:
    server: Graphgate = request.getfixturevalue(f"{store}_server")
    key: ApiKey = request.getfixturevalue(f"{store}_key")
    chat: RemoteRunnable[Any, Any] = RemoteRunnable(
        server.chat_url, headers=key.headers, timeout=30
    )
    assert chat.invoke({"question": f"rr {marker}"}).content == f"Echo: rr {marker}"
    sdk = openai.OpenAI(base_url=f"{server.url}/v1", api_key=key.key, max_retries=0)
    completion = sdk.chat.completions.create(
        model="graphgate", messages=[{"role": "user", "content": f"sdk {marker}"}]
    )
    assert completion.choices[0].message.content == f"Echo: sdk {marker}"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{server.url}/v1", api_key="wrong", max_retries=0).models.list()


def test_the_javascript_remote_runnable_carries_a_key(
    redis_server: Graphgate, redis_key: ApiKey, marker: str
) -> None:
    script = (
        'import { RemoteRunnable } from "@langchain/core/runnables/remote";\n'
        "const chat = new RemoteRunnable({ url: process.env.URL, options: { headers: "
        "{ Authorization: `Bearer ${process.env.KEY}` } } });\n"
        "console.log((await chat.invoke({ question: process.env.Q })).content);\n"
    )
    path = ROOT / "tests" / "js" / f"key-{uuid.uuid4().hex}.mjs"
    path.write_text(script)
    try:
        env = child_env(URL=redis_server.chat_url, KEY=redis_key.key, Q=f"js {marker}")
        result = subprocess.run(
            ["node", path.name], cwd=path.parent, env=env, capture_output=True, text=True
        )
    finally:
        path.unlink()
    assert result.stdout.strip() == f"Echo: js {marker}", result.stderr


def test_a_key_added_to_the_keys_file_works_and_one_removed_stops(
    file_server: Graphgate, keys_file: Path
) -> None:
    key = create_key(f"p-{uuid.uuid4().hex[:10]}", "--file", str(keys_file))
    assert invoke(file_server, key.headers).status_code == 200
    subprocess.run(
        [sys.executable, "-m", "auth", "revoke", key.key_id, "--file", str(keys_file)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    assert_unauthenticated(invoke(file_server, key.headers))


def worker_of(server: Graphgate, trace_id: str) -> int:
    """The pid of the worker that answered, from its access line."""
    line = server.process.wait_for_line(
        lambda line: trace_id in line and "graphgate.access" in line
    )
    pid: int = json.loads(line)["process"]
    return pid


def test_a_revoked_key_stops_working_within_a_second_on_every_worker(
    graphgate_factory: StartGraphgate, redis_url: str
) -> None:
    server = graphgate_factory("redis", workers=2, AUTH_MODE="api_key")
    key = create_key(f"p-{uuid.uuid4().hex[:10]}", redis_url=redis_url)
    assert {invoke(server, key.headers).status_code for _ in range(4)} == {200}
    subprocess.run(
        [sys.executable, "-m", "auth", "revoke", key.key_id],
        cwd=ROOT,
        env=child_env(REDIS_URL=redis_url),
        check=True,
        capture_output=True,
    )
    revoked_at = time.monotonic()
    # Fresh connections until both workers (told apart by the pid on their access lines) have
    # answered; the first request goes out at once.
    answers: list[tuple[int, float]] = []
    workers: set[int] = set()
    while len(workers) < 2 and len(answers) < 200:
        response = httpx.post(
            f"{server.url}/chat/invoke",
            json={"input": {"question": "after"}},
            headers={**key.headers, "Connection": "close"},
        )
        answers.append((response.status_code, time.monotonic() - revoked_at))
        workers.add(worker_of(server, response.headers["X-Trace-Id"]))
    assert len(workers) == 2
    assert {status for status, _ in answers} == {401}
    assert answers[0][1] < 1.0
    print(f"first refusal {answers[0][1] * 1000:.0f} ms after revocation; {len(answers)} asked")
    listed = subprocess.run(
        [sys.executable, "-m", "auth", "list"],
        cwd=ROOT,
        env=child_env(REDIS_URL=redis_url),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert key.key_id not in listed
    assert key.key not in listed


def test_a_per_key_rate_limit_overrides_the_servers(
    redis_server: Graphgate, redis_url: str
) -> None:
    key = create_key(f"p-{uuid.uuid4().hex[:10]}", "--rate-limit", "2", redis_url=redis_url)
    assert [invoke(redis_server, key.headers).status_code for _ in range(2)] == [200, 200]
    refused = invoke(redis_server, key.headers)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limited"
    assert refused.headers["X-RateLimit-Limit"] == "2"


def test_a_changed_x_user_id_buys_no_quota(redis_server: Graphgate, redis_url: str) -> None:
    key = create_key(f"p-{uuid.uuid4().hex[:10]}", "--rate-limit", "2", redis_url=redis_url)
    statuses = [
        invoke(redis_server, {**key.headers, "X-User-Id": f"someone-{turn}"}).status_code
        for turn in range(3)
    ]
    assert statuses == [200, 200, 429]
    usage = httpx.get(f"{redis_server.url}/usage", headers=key.headers).json()
    assert usage["principal"] == key.principal


def test_the_access_line_names_the_principal_and_key_id_never_the_key(
    redis_server: Graphgate, redis_key: ApiKey
) -> None:
    response = invoke(redis_server, redis_key.headers)
    trace_id = response.headers["X-Trace-Id"]
    line = redis_server.process.wait_for_line(
        lambda line: trace_id in line and "graphgate.access" in line
    )
    record = json.loads(line)
    assert (record["principal"], record["key_id"]) == (redis_key.principal, redis_key.key_id)
    assert redis_key.key not in line


def test_a_bad_line_in_the_keys_file_does_not_keep_a_removed_key_alive(
    file_server: Graphgate, keys_file: Path
) -> None:
    key = create_key(f"p-{uuid.uuid4().hex[:10]}", "--file", str(keys_file))
    assert invoke(file_server, key.headers).status_code == 200
    lines = keys_file.read_text().splitlines()
    kept = [line for line in lines if key.key_id not in line]
    keys_file.write_text("\n".join([*kept, "not a key line", ""]))
    try:
        assert_unauthenticated(invoke(file_server, key.headers))
    finally:  # servers started later read the same file, and refuse a bad one at start-up
        keys_file.write_text("\n".join([*kept, ""]))


def test_the_cli_refuses_a_negative_limit(keys_file: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "auth", "create", "--principal", "neg", "--rate-limit", "-5"],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "negative" in result.stderr


def test_a_corrupt_key_record_in_redis_is_refused_not_a_500(
    redis_server: Graphgate, redis_url: str
) -> None:
    key = "gg_corrupt-record-for-tests"
    record = f"graphgate:apikey:{hashlib.sha256(key.encode()).hexdigest()}"
    client = redis.Redis.from_url(redis_url)
    client.hset(record, mapping={"principal": "p{x}", "rate_limit_max": "-1"})
    try:
        assert_unauthenticated(invoke(redis_server, {"Authorization": f"Bearer {key}"}))
    finally:
        client.delete(record)
