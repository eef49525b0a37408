"""Session-wide real services: a Redis Stack on a private port, the OpenAI-compatible double,
and graphgate servers started on demand, one per configuration."""

from __future__ import annotations

import itertools
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from scripts.processes import ROOT, UVICORN_LISTENING, ManagedProcess, child_env, free_port
from tests.live_servers import RUNNING, Graphgate, LiveServers, StartGraphgate
from tests.redis_servers import RedisFlavours, start_redis
from tests.secret_leaks import assert_no_secret_in_logs
from tests.upstream import Upstream
from tests.warm_launcher import WarmLauncher
from tests.work_units import WorkUnitScheduling, machine_load_first

PRIMARY_MODEL = "gpt-primary"
FALLBACK_MODEL = "gpt-fallback"
MODES = ["embedded", "redis"]
# The Redis flavours graphgate runs on: Redis Stack, a Redis with no modules (as most managed
# offerings are) and a Redis Cluster of three masters with a replica each.
REDIS_FLAVOURS = ["redis", "plain", "cluster"]
ALL_MODES = ["embedded", *REDIS_FLAVOURS]
UVICORN = [sys.executable, "-m", "uvicorn", "server:app", "--host", "127.0.0.1"]
GUNICORN = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    machine_load_first(items)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> WorkUnitScheduling:
    return WorkUnitScheduling(config, log)


# Every key and token the suite hands out, so that the session's end can prove that no server's
# captured output holds one (`logs_dir`).
ISSUED_SECRETS: set[str] = set()


@dataclass
class ApiKey:
    key: str
    key_id: str
    principal: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def create_key(principal: str, *options: str, redis_url: str | None = None) -> ApiKey:
    """A key made by the real CLI (`python -m auth create`), in a keys file (`--file PATH`
    among `options`) or in Redis."""
    env = child_env(**({"REDIS_URL": redis_url} if redis_url else {}))
    result = subprocess.run(
        [sys.executable, "-m", "auth", "create", "--principal", principal, *options],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    announce, key = result.stdout.strip().splitlines()
    ISSUED_SECRETS.add(key)
    return ApiKey(key, announce.split()[2], principal)


@pytest.fixture(scope="session")
def logs_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where every process the session starts writes its output. Torn down after all of them
    (they depend on it), it then checks that none of that output holds a secret: a failure
    shows as an error in the teardown of the session's last test."""
    path = tmp_path_factory.mktemp("logs")
    yield path
    assert_no_secret_in_logs(path, ISSUED_SECRETS)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory, logs_dir: Path) -> Iterator[str]:
    redis = start_redis(tmp_path_factory.mktemp("redis"), logs_dir / "redis.log")
    yield redis.url
    redis.process.stop()


@pytest.fixture(scope="session")
def redis_flavours(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory, logs_dir: Path
) -> Iterator[RedisFlavours]:
    flavours = RedisFlavours(redis_url, tmp_path_factory.mktemp("flavours"), logs_dir)
    yield flavours
    flavours.stop()


@pytest.fixture
def redis_store(
    redis_flavours: RedisFlavours, mode: str
) -> Iterator[redis.Redis | redis.RedisCluster]:
    """A client of the Redis this test's server uses (a Redis mode only)."""
    client = redis_flavours.client(mode)
    yield client
    client.close()


@pytest.fixture(scope="session")
def upstream(logs_dir: Path) -> Iterator[Upstream]:
    port = free_port()
    double = ManagedProcess(
        [sys.executable, "-m", "openai_double", "--port", str(port)],
        env=child_env(),
        ready_text=UVICORN_LISTENING,
        log_path=logs_dir / "upstream.log",
    )
    double.start()
    yield Upstream(f"http://127.0.0.1:{port}")
    double.stop()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """The file whose test is being set up, for `LiveServers` (before any fixture starts)."""
    RUNNING.path = item.path


@pytest.fixture(scope="session")
def warm_launcher() -> Iterator[WarmLauncher]:
    """This worker's launcher of servers (`tests/warm_launcher.py`)."""
    launcher = WarmLauncher(str(ROOT), child_env())
    yield launcher
    launcher.close()


@pytest.fixture(scope="session")
def graphgate_factory(
    upstream: Upstream, redis_flavours: RedisFlavours, logs_dir: Path, warm_launcher: WarmLauncher
) -> Iterator[Callable[..., Graphgate]]:
    """`start(mode, **settings)`: a graphgate server for that configuration, started once
    (and again if `LiveServers` has stopped it since)."""
    live = LiveServers()
    names = itertools.count()

    def server_settings(mode: str, settings: dict[str, str]) -> dict[str, str]:
        base = {
            "APP_ENV": "test",
            "OPENAI_BASE_URL": upstream.api_url,
            "LLM_MODEL": PRIMARY_MODEL,
            "LLM_FALLBACK_MODEL": FALLBACK_MODEL,
            # The limit has its own tests with its own servers; here it must not get in the way.
            "RATE_LIMIT_MAX": "1000",
        }
        if mode != "embedded":
            base.update(redis_flavours.settings(mode))
        return {**base, **settings}

    def launch(mode: str, settings: dict[str, str], name: str, workers: int) -> Graphgate:
        port = free_port()
        command = [*UVICORN, "--port", str(port)]
        if workers:
            command = [*GUNICORN, "-w", str(workers), "-b", f"127.0.0.1:{port}", "server:app"]
        process = ManagedProcess(
            command,
            env=child_env(**server_settings(mode, settings)),
            # gunicorn's socket listens before its workers start.
            ready_text="Application startup complete" if workers else UVICORN_LISTENING,
            ready_count=max(1, workers),
            log_path=logs_dir / f"graphgate-{name}.log",
            spawn=warm_launcher.spawn,
        )
        process.start()
        return Graphgate(f"http://127.0.0.1:{port}", process)

    def start(
        mode: str = "embedded", *, fresh: bool = False, workers: int = 0, **settings: str
    ) -> Graphgate:
        """`workers`: run under gunicorn with that many uvicorn workers, as in production."""
        key = (mode, tuple(sorted({**settings, "workers": str(workers)}.items())))
        if not fresh and (server := live.get(key)) is not None:
            return server
        live.make_room()
        server = launch(mode, settings, f"{mode}-{next(names)}", workers)
        if fresh:
            live.add_fresh(server)
        else:
            live.add(key, server)
        return server

    yield start
    live.stop()


def mode_fixture(modes: list[str]) -> Any:
    """A `mode` fixture over `modes`; a module that runs on other modes than `MODES` sets
    `mode = mode_fixture(ALL_MODES)` (or `REDIS_FLAVOURS`)."""

    @pytest.fixture(params=modes)
    def mode(request: pytest.FixtureRequest) -> str:
        mode: str = request.param
        return mode

    return mode


mode = mode_fixture(MODES)


@pytest.fixture
def server(graphgate_factory: StartGraphgate, mode: str) -> Graphgate:
    """The default-settings server of this test's mode."""
    return graphgate_factory(mode)


@pytest.fixture(scope="session")
def keys_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The API_KEYS_FILE of the api_key servers; tests add keys to it with `create_key`."""
    path = tmp_path_factory.mktemp("keys") / "api-keys"
    path.write_text("# principal sha256-of-key [options]\n")
    return path


@pytest.fixture
def user() -> str:
    """A fresh principal per test: its own sessions and rate-limit window."""
    return f"user-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def marker() -> str:
    """A fresh token to put in questions, so upstream behaviors and counters are per test."""
    return f"m{uuid.uuid4().hex[:12]}"
