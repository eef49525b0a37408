"""Real processes for the tests and the benchmarks: started, awaited on their own ready line,
stopped, and what /proc says of them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Protocol

ROOT = Path(__file__).resolve().parent.parent


# What a single uvicorn prints once its socket listens. Its "Application startup complete" comes
# before the bind: a port taken meanwhile by another process would look ready and be another
# server's.
UVICORN_LISTENING = "Uvicorn running on"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ChildProcess(Protocol):
    """What `ManagedProcess` uses of a `subprocess.Popen`."""

    pid: int
    stdout: IO[str] | None
    returncode: int | None

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def send_signal(self, signum: int) -> None: ...

    def kill(self) -> None: ...


# How a process is started: its command, environment and working directory; the child's
# output (stdout and stderr together) must be readable as `stdout`.
Spawn = Callable[[list[str], dict[str, str], str], ChildProcess]


def popen(command: list[str], env: dict[str, str], cwd: str) -> ChildProcess:
    return subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


class ManagedProcess:
    """A child process whose output goes to a log file; `start` returns once it has printed
    `ready_text` `ready_count` times (an event, not a sleep) and fails with the log when it dies
    first. `spawn` starts it (`popen` unless told otherwise)."""

    def __init__(
        self,
        command: Sequence[str],
        *,
        env: dict[str, str],
        ready_text: str,
        log_path: Path,
        ready_count: int = 1,
        spawn: Spawn = popen,
    ) -> None:
        self.command = list(command)
        self.env = env
        self.ready_text = ready_text
        self.ready_count = ready_count
        self.log_path = log_path
        self._spawn = spawn
        self.process: ChildProcess | None = None
        self.lines: list[str] = []
        self._new_line = threading.Condition()

    def start(self, timeout: float = 60) -> None:
        ready = threading.Event()
        process = self._spawn(self.command, self.env, str(ROOT))
        self.process = process

        started: list[bool] = []

        def pump() -> None:
            assert process.stdout is not None
            seen = 0
            with self.log_path.open("a") as log:
                for line in process.stdout:
                    log.write(line)
                    log.flush()
                    with self._new_line:
                        self.lines.append(line)
                        self._new_line.notify_all()
                    seen += self.ready_text in line
                    if seen >= self.ready_count and not started:
                        started.append(True)
                        ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(timeout) or not started or process.poll() is not None:
            self.stop()
            raise RuntimeError(f"{self.command[0]} did not start:\n{self.log_tail()}")

    def wait_for_line(self, predicate: Callable[[str], bool], timeout: float = 10) -> str:
        """The first output line that satisfies `predicate`, waiting for it to be printed."""
        with self._new_line:
            found: list[str] = []

            def seen() -> bool:
                found[:] = [line for line in self.lines if predicate(line)][:1]
                return bool(found)

            if not self._new_line.wait_for(seen, timeout):
                raise TimeoutError(f"no such line within {timeout} s:\n{self.log_tail()}")
            return found[0]

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 15) -> int | None:
        self.signal_stop()
        return self.wait_stopped(timeout)

    def signal_stop(self) -> None:
        """Ask it to stop (SIGTERM), without waiting."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait_stopped(self, timeout: float = 15) -> int | None:
        """Its exit code once it has stopped; killed if it takes longer than `timeout`."""
        if self.process is None:
            return None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text().splitlines()[-lines:])


def stop_all(processes: list[ManagedProcess], timeout: float = 15) -> None:
    """Stop them together: each drains at the same time as the others, not one after another."""
    for process in processes:
        process.signal_stop()
    for process in processes:
        process.wait_stopped(timeout)


def child_env(**overrides: str) -> dict[str, str]:
    """The test process's environment, kept off any proxy, with `overrides` applied."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(NO_PROXY="127.0.0.1,localhost", PYTHONUNBUFFERED="1", **overrides)
    return env


def worker_pids(master_pid: int) -> set[int]:
    """The pids of a gunicorn master's workers."""
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    return {int(pid) for pid in children}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise ValueError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
