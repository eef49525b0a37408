"""wrk, the load generator of the invoke measurements: a Lua script cycles through the
requests (sessions and keys) and its `done` hook prints the figures as JSON."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DONE = """
done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %f, "errors": %d, "p50_ms": %f, "p90_ms": %f, "p99_ms": %f}\\n',
    summary.requests, summary.duration / 1e6,
    errors.connect + errors.read + errors.write + errors.status + errors.timeout,
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3))
end
"""


def lua_string(text: str) -> str:
    """A Lua string literal. JSON's escapes of quotes, backslashes and \\n are Lua's too; the
    harness sends only printable ASCII (`\\uXXXX`, JSON's escape for the rest, is not Lua's)."""
    if not text.isascii() or not text.isprintable():
        raise ValueError(f"not printable ASCII: {text!r}")
    return json.dumps(text, ensure_ascii=True)


def script(path: str, requests: list[dict[str, Any]]) -> str:
    """A wrk script that sends `requests` (each a body and headers) in turn."""
    formatted = []
    for request in requests:
        headers = {"Content-Type": "application/json", **request.get("headers", {})}
        table = ", ".join(f"[{lua_string(k)}] = {lua_string(v)}" for k, v in headers.items())
        body = lua_string(json.dumps(request["body"]))
        formatted.append(f'  wrk.format("POST", {lua_string(path)}, {{{table}}}, {body}),')
    return (
        "local requests\n"
        "local index = 0\n"
        "init = function(args)\n  requests = {\n" + "\n".join(formatted) + "\n  }\nend\n"
        "request = function()\n  index = index % #requests + 1\n  return requests[index]\nend\n"
        + DONE
    )


def run(
    url: str,
    requests: list[dict[str, Any]],
    concurrency: int,
    seconds: float,
    workdir: Path,
    core: int,
) -> dict[str, Any]:
    """wrk on core `core` with one thread and `concurrency` connections: its JSON figures."""
    lua = workdir / "wrk.lua"
    lua.write_text(script(urlsplit(url).path, requests))
    command = [
        *("taskset", "-c", str(core), "wrk", "-t1", f"-c{concurrency}"),
        *(f"-d{max(1, round(seconds))}s", "--timeout", "30s", "-s", str(lua), url),
    ]
    output = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    if output.returncode != 0:
        raise RuntimeError(f"wrk failed: {output.stdout}{output.stderr}")
    figures: dict[str, Any] = json.loads(output.stdout.strip().splitlines()[-1])
    return figures
