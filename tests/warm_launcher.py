"""graphgate servers for the tests, forked from an interpreter that has imported the libraries
already.

A server's start-up is mostly imports: 1.9 s of CPU (openai's types, langchain-core's tracers,
FastAPI, LangGraph) in each of the ~170 server processes a `make test` starts. A
launcher process (`python -m tests.warm_launcher`, one per pytest worker) imports those
libraries once and forks a child per server, which then runs `python -m uvicorn ...` or
`python -m gunicorn ...` exactly as the command line would: its own process, environment,
working directory and output, graphgate's own modules imported fresh. Nothing of graphgate and
nothing that reads the environment when imported (prometheus-client reads
PROMETHEUS_MULTIPROC_DIR then) is imported before the fork; the launcher checks that, and that
it runs no thread to fork from.

The test side (`WarmLauncher.spawn`) passes the child's output pipe over a Unix socket and
gets a `ForkedChild` back: what `ManagedProcess` needs of a `subprocess.Popen` (pid, output,
poll, wait, signals), with the exit code read by the launcher, the child's parent."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import runpy
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import traceback
from typing import IO, Any

from scripts.processes import ChildProcess, popen

PRELOADED = (
    "openai",
    "langchain_openai",
    "langchain_core.language_models",
    "langchain_core.runnables",
    "langchain_core.tracers.event_stream",
    "langsmith.run_trees",
    "fastapi",
    "langserve",
    "langgraph.graph",
    "redis.asyncio",
    "httpx",
    "tiktoken",
    "sse_starlette",
    "pydantic_settings",
    "uvicorn.main",
    "gunicorn.app.wsgiapp",
)
# Read from the environment when first imported, so each server must import it itself.
NOT_PRELOADED = ("prometheus_client",)
GRAPHGATE_PACKAGES = {"server", "api", "auth", "graphs", "middleware", "serving"}
MESSAGE = 65536


def interpreter_env(env: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in env.items() if name.startswith("PYTHON")}


class ForkedChild:
    """A server the launcher forked: the subset of `subprocess.Popen` that tests use. Its exit
    is awaited here on a pidfd (another thread may signal it meanwhile); the launcher, its
    parent, reads the exit code, and until then the pid stays reserved (a zombie at worst)."""

    def __init__(self, launcher: WarmLauncher, pid: int, stdout: IO[str]) -> None:
        self._launcher = launcher
        self._exited = os.pidfd_open(pid)
        self.pid = pid
        self.stdout: IO[str] | None = stdout
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return self.wait_for(0)

    def wait(self, timeout: float | None = None) -> int:
        code = self.wait_for(timeout)
        if code is None:
            raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0)
        return code

    def wait_for(self, timeout: float | None) -> int | None:
        if self.returncode is None and select.select([self._exited], [], [], timeout)[0]:
            self.returncode = self._launcher.ask({"op": "exit_code", "pid": self.pid})
            os.close(self._exited)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class WarmLauncher:
    """The test side: one launcher process, asked over a socket (one request at a time)."""

    def __init__(self, cwd: str, env: dict[str, str]) -> None:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.warm_launcher", str(theirs.fileno())],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            pass_fds=[theirs.fileno()],
        )
        theirs.close()
        self._interpreter = interpreter_env(env)
        self._socket = mine
        self._lock = threading.Lock()
        self.ask({"op": "ready"})

    def ask(self, request: dict[str, Any], fds: list[int] | None = None) -> Any:
        with self._lock:
            socket.send_fds(self._socket, [json.dumps(request).encode()], fds or [])
            reply = self._socket.recv(MESSAGE)
        if not reply:
            raise RuntimeError(f"the warm launcher exited ({self._process.poll()})")
        answer = json.loads(reply)
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer["result"]

    def spawn(self, command: list[str], env: dict[str, str], cwd: str) -> ChildProcess:
        """`command` run in a fork of the launcher when it is `[python, "-m", module, ...]` and
        sets the interpreter's own variables (`PYTHON*`: PYTHONPATH, PYTHONHASHSEED, ...) as
        the launcher's, which were applied when it started; otherwise from the command line."""
        if command[:2] != [sys.executable, "-m"] or interpreter_env(env) != self._interpreter:
            return popen(command, env, cwd)
        read, write = os.pipe()
        try:
            request = {"op": "spawn", "argv": command[2:], "env": env, "cwd": cwd}
            pid = self.ask(request, [write])
        finally:
            os.close(write)
        return ForkedChild(self, pid, os.fdopen(read, "r"))

    def close(self) -> None:
        self._socket.close()
        self._process.wait(15)


def run_child(argv: list[str], env: dict[str, str], cwd: str, output: int) -> None:
    """In the forked child: become `python -m argv[0] argv[1:]` and never return."""
    code = 1
    try:
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        sys.argv = ["-m", *argv[1:]]
        sys.path[0] = cwd
        runpy.run_module(argv[0], run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else (0 if exit.code is None else 1)
    except BaseException:  # noqa: BLE001 - the traceback the interpreter would print, then 1
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def exit_code(pid: int, codes: dict[int, int]) -> int:
    """The exit code of a child that has exited (`ForkedChild` waits for that)."""
    if pid not in codes:
        _pid, status = os.waitpid(pid, 0)
        codes[pid] = os.waitstatus_to_exitcode(status)
    return codes[pid]


def serve(channel: socket.socket) -> None:
    """Answer requests until the test side goes away."""
    codes: dict[int, int] = {}
    while True:
        message, fds, _flags, _address = socket.recv_fds(channel, MESSAGE, 1)
        if not message:
            return
        request = json.loads(message)
        try:
            if request["op"] == "spawn":
                pid = os.fork()
                if pid == 0:
                    channel.close()
                    run_child(request["argv"], request["env"], request["cwd"], fds[0])
                os.close(fds[0])
                reply: dict[str, Any] = {"result": pid}
            elif request["op"] == "exit_code":
                reply = {"result": exit_code(request["pid"], codes)}
            elif request["op"] == "ready":
                reply = {"result": None}
            else:
                reply = {"error": f"no request {request['op']!r}"}
        except (OSError, KeyError, ValueError) as exc:
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        channel.sendall(json.dumps(reply).encode())


def main() -> None:
    for name in PRELOADED:
        importlib.import_module(name)
    leaked = [name for name in NOT_PRELOADED if name in sys.modules]
    own = [name for name in sys.modules if name.split(".")[0] in GRAPHGATE_PACKAGES]
    # tempfile caches TMPDIR's folder on first use: a server must find it itself.
    if leaked or own or tempfile.tempdir is not None or threading.active_count() != 1:
        raise SystemExit(f"cannot fork servers from here: {leaked} {own} {threading.enumerate()}")
    serve(socket.socket(fileno=int(sys.argv[1])))


if __name__ == "__main__":
    main()
