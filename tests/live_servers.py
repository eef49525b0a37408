"""The graphgate servers of one test worker: what a test gets (`Graphgate`), and which of them
keep running (`LiveServers`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scripts.processes import ManagedProcess, stop_all


def route_file(folder: Path, toml: str) -> str:
    """A route file in `folder` holding `toml`: its path, for a server's `ROUTES_FILE`."""
    path = folder / "routes.toml"
    path.write_text(toml)
    return str(path)


@dataclass
class Graphgate:
    url: str
    process: ManagedProcess

    @property
    def chat_url(self) -> str:
        return f"{self.url}/chat/"


StartGraphgate = Callable[..., Graphgate]


ServerKey = tuple[str, tuple[tuple[str, str], ...]]

# How many servers of earlier test files a worker keeps running (the default configurations
# most files share); the rest are stopped. A gunicorn server of four workers holds about 1 GB:
# keeping every configuration alive to the end ran two pytest-xdist workers out of memory.
KEPT_FROM_EARLIER_FILES = 4


@dataclass
class RunningFile:
    path: Path | None = None


RUNNING = RunningFile()


class LiveServers:
    """One worker's servers: a configuration's server runs while its file's tests do, and
    afterwards while it is among the `KEPT_FROM_EARLIER_FILES` most recently used. A `fresh`
    server belongs to its test: it is stopped once another file runs, whatever its test did."""

    def __init__(self) -> None:
        self._shared: dict[ServerKey, tuple[Graphgate, Path | None]] = {}  # least recent first
        self._fresh: list[tuple[Graphgate, Path | None]] = []

    def get(self, key: ServerKey) -> Graphgate | None:
        entry = self._shared.pop(key, None)
        if entry is None:
            return None
        self._shared[key] = (entry[0], RUNNING.path)
        return entry[0]

    def add(self, key: ServerKey, server: Graphgate) -> None:
        self._shared[key] = (server, RUNNING.path)

    def add_fresh(self, server: Graphgate) -> None:
        self._fresh.append((server, RUNNING.path))

    def make_room(self) -> None:
        """Stop the servers that earlier files left and no longer need."""
        earlier = [key for key, (_, path) in self._shared.items() if path != RUNNING.path]
        surplus = earlier[: max(0, len(earlier) - KEPT_FROM_EARLIER_FILES)]
        done = [self._shared.pop(key)[0] for key in surplus]
        done += [server for server, path in self._fresh if path != RUNNING.path]
        self._fresh = [(server, path) for server, path in self._fresh if path == RUNNING.path]
        stop_all([server.process for server in done])

    def stop(self) -> None:
        stop_all([server.process for server, _ in [*self._shared.values(), *self._fresh]])
