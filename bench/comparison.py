"""The servers `make bench` compares and how it starts them: each under uvicorn, one worker
pinned to its core, beside a throwaway Redis Stack on the load's core; the API keys of the
load's users, and the requests every server is sent. The profiler and the GC-pause measurement
start graphgate the same way."""

from __future__ import annotations

import sys
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auth.api_keys import KeyRecord, key_hash, key_line, new_key
from scripts.processes import UVICORN_LISTENING, ManagedProcess, child_env, free_port
from scripts.redis_stack import server_command, server_env

SERVER_CORE, LOAD_CORE = 1, 0
USERS, SESSIONS = 100, 1_000
QUESTION = "please tell me a short story about the sea and the stars tonight my friend number"


@dataclass(frozen=True)
class Server:
    name: str
    app: str
    health: str = "/health"
    env: dict[str, str] = field(default_factory=dict)


def servers(keys_file: Path, keys: list[str]) -> list[Server]:
    graphgate = {
        "APP_ENV": "development",
        "ENABLE_PLAYGROUND": "false",
        "LOG_LEVEL": "INFO",
        "AUTH_MODE": "api_key",
        "API_KEYS_FILE": str(keys_file),
        "LLM_MODEL": "demo",
        "DEMO_TOKENS_PER_SECOND": "0",
        "MAX_OUTPUT_TOKENS": "20",
        "RATE_LIMIT_MAX": "1000000000",
        "TOKENS_PER_MINUTE": "1000000000000",
        "DAILY_BUDGET_USD": "1000000000",
        "MAX_CONCURRENCY": "512",
    }
    return [
        Server("bare", "bench.anchors.bare:app"),
        Server("langserve_chain", "bench.anchors.langserve_chain:app"),
        Server("tutorial", "bench.anchors.tutorial:app", env={"BENCH_API_KEYS": ",".join(keys)}),
        Server("naive_graph", "bench.anchors.naive_graph:app"),
        Server(
            "naive_graph_stateless",
            "bench.anchors.naive_graph:app",
            env={"BENCH_CHECKPOINTER": "none"},
        ),
        Server("graphgate", "server:app", health="/health/ready", env=graphgate),
    ]


def graphgate_server(keys_file: Path, keys: list[str]) -> Server:
    """graphgate as the comparison runs it, for the tools that measure it alone."""
    return next(server for server in servers(keys_file, keys) if server.name == "graphgate")


def issue_keys(path: Path) -> list[str]:
    """One API key per user, in a keys file graphgate reads (only their hashes are stored)."""
    keys = [new_key() for _ in range(USERS)]
    records = [KeyRecord(f"user{i}", key_hash(key)) for i, key in enumerate(keys)]
    path.write_text("".join(key_line(record) + "\n" for record in records))
    return keys


def load(
    keys: list[str], phase: str = "", sessions: int = SESSIONS, question: str = QUESTION
) -> list[dict[str, Any]]:
    """The requests every server is sent: turn after turn of 1,000 sessions (or `sessions`) of
    100 users. Each phase of a measurement has sessions of its own, so a faster server's longer
    histories from one phase do not weigh on the next."""
    requests = []
    for i in range(sessions):
        user, session = i % USERS, f"{phase}s{i}"
        requests.append(
            {
                "body": {
                    "input": {"question": f"{question} {phase}{i}"},
                    "config": {"configurable": {"session_id": session}},
                },
                "headers": {
                    "Authorization": f"Bearer {keys[user]}",
                    "X-Session-Id": f"user{user}:{session}",
                },
            }
        )
    return requests


def start_server(server: Server, redis_url: str, workdir: Path) -> tuple[ManagedProcess, str]:
    """`server` under uvicorn, one worker on the server's core, listening: it and its URL."""
    port = free_port()
    command = [
        *("taskset", "-c", str(SERVER_CORE), sys.executable, "-m", "uvicorn", server.app),
        *("--host", "127.0.0.1", "--port", str(port), "--no-access-log"),
    ]
    process = ManagedProcess(
        command,
        env=child_env(REDIS_URL=redis_url, **server.env),
        ready_text=UVICORN_LISTENING,
        log_path=workdir / f"{server.name}.log",
    )
    process.start()
    return process, f"http://127.0.0.1:{port}"


def start_redis(stack: ExitStack, workdir: Path) -> str:
    """A throwaway Redis Stack on the load's core, stopped with `stack`: its URL."""
    port = free_port()
    process = ManagedProcess(
        ["taskset", "-c", str(LOAD_CORE), *server_command(port, workdir, appendonly=False)],
        env=server_env(),
        ready_text="Ready to accept connections",
        log_path=workdir / "redis.log",
    )
    process.start()
    stack.callback(process.stop)
    return f"redis://127.0.0.1:{port}/0"
