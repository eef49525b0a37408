"""What the drills share: a Redis that can be killed and brought back from its AOF, clients
holding multi-turn sessions, a record of every request a drill sent, and the check that no
acknowledged turn went missing."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from scripts.processes import ROOT, ManagedProcess, free_port
from scripts.redis_stack import server_command, server_env
from tests.live_servers import Graphgate, StartGraphgate

REPORTS = ROOT / "tests" / "artifacts" / "drills"
PACE = 0.25  # seconds between one client's turns: about 80 turns a second from 20 clients
LEASE = 3.0  # a session lock held by a turn cut down with Redis frees within this
# `make test` runs the drills on a short timeline, `make drill` on the full one.
FULL_TIMELINE = os.environ.get("DRILL_TIMELINE") == "full"


def timeline(full: float, short: float) -> float:
    """A drill's span of time: `full` under `make drill`, `short` in `make test`."""
    return full if FULL_TIMELINE else short


class DurableRedis:
    """Redis Stack with `appendonly yes` and `appendfsync always`: what it acknowledged
    survives `kill -9`, and `restart` brings it back on the same port from the same AOF."""

    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        self.log_path = log_path
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = server_command(self.port, self.data_dir, appendonly=True, appendfsync="always")
        self.process = ManagedProcess(
            command,
            env=server_env(),
            ready_text="Ready to accept connections",
            log_path=self.log_path,
        )
        self.process.start()

    def kill(self) -> None:
        assert self.process is not None
        assert self.process.process is not None
        self.process.process.send_signal(signal.SIGKILL)
        self.process.process.wait()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


@dataclass
class Outcome:
    """One request of a drill: when it started and ended (monotonic), its status and code."""

    started: float
    ended: float
    status: int  # 0: no HTTP answer (connection refused or reset)
    code: str | None = None
    detail: str = ""

    @property
    def seconds(self) -> float:
        return self.ended - self.started


@dataclass
class Record:
    outcomes: list[Outcome] = field(default_factory=list)

    async def send(
        self, client: httpx.AsyncClient, method: str, url: str, **kwargs: Any
    ) -> httpx.Response | None:
        """Send a request and note its outcome; None when no HTTP answer came."""
        started = time.monotonic()
        try:
            response = await client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            self.outcomes.append(Outcome(started, time.monotonic(), 0, detail=type(exc).__name__))
            return None
        self.outcomes.append(
            Outcome(started, time.monotonic(), response.status_code, error_code(response))
        )
        return response

    def between(self, start: float, end: float) -> list[Outcome]:
        """The requests that started and ended inside [start, end]."""
        return [o for o in self.outcomes if start <= o.started and o.ended <= end]

    def statuses(self, outcomes: list[Outcome] | None = None) -> Counter[str]:
        """`200`, `503 unavailable`, ...: how the requests ended, for assertions and notes."""
        return Counter(
            f"{o.status} {o.code}" if o.code else str(o.status)
            for o in (self.outcomes if outcomes is None else outcomes)
        )


def session_drill_server(
    graphgate_factory: StartGraphgate, redis_url: str, **settings: str
) -> Graphgate:
    """A fresh graphgate on two gunicorn workers for a drill of multi-turn sessions on
    `redis_url`: short session leases, every turn kept in the history that is checked."""
    return graphgate_factory(
        "redis",
        fresh=True,
        workers=2,
        REDIS_URL=redis_url,
        SESSION_LOCK_LEASE=str(LEASE),
        MAX_HISTORY_MESSAGES="2000",
        QUEUE_TIMEOUT="5",
        **settings,
    )


@dataclass
class Deadline:
    """When a drill's traffic stops (monotonic); a drill may move it once it knows more."""

    at: float

    def passed(self) -> bool:
        return time.monotonic() >= self.at


async def converse(
    client: httpx.AsyncClient, index: int, marker: str, until: Deadline, record: Record
) -> list[str]:
    """One client's session: turn after turn until `until`; the questions acknowledged."""
    acknowledged = []
    turn = 0
    while not until.passed():
        question = f"c{index} t{turn} {marker}"
        body = {"input": {"question": question}, "config": {"configurable": {"session_id": "s"}}}
        response = await record.send(
            client, "POST", "/chat/invoke", json=body, headers={"X-User-Id": f"u{index}{marker}"}
        )
        if response is not None and response.status_code == 200:
            acknowledged.append(question)
        turn += 1
        await asyncio.sleep(PACE)
    return acknowledged


async def watch_readiness(client: httpx.AsyncClient, until: Deadline) -> list[tuple[float, int]]:
    """(when, status) of /health/ready, five times a second until `until`."""
    seen = []
    while not until.passed():
        response = await client.get("/health/ready")
        seen.append((time.monotonic(), response.status_code))
        await asyncio.sleep(0.2)
    return seen


def lost_turns(acknowledged: list[list[str]], histories: list[httpx.Response]) -> int:
    """How many acknowledged questions are missing from their session's history."""
    lost = 0
    for questions, history in zip(acknowledged, histories, strict=True):
        assert history.status_code == 200
        stored = {m["content"] for m in history.json()["messages"] if m["type"] == "human"}
        lost += len(set(questions) - stored)
    return lost


def error_code(response: httpx.Response) -> str | None:
    if response.status_code < 400:
        return None
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return None


def report(drill: str, figures: dict[str, Any]) -> None:
    """A drill's figures, kept in `tests/artifacts/drills/<drill>.json` for its notes."""
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / f"{drill}.json").write_text(json.dumps(figures, indent=2) + "\n")
