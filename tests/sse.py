"""Reading LangServe's server-sent events over plain HTTP, as any client would."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class StreamResult:
    status: int
    headers: httpx.Headers
    events: list[tuple[str, Any]]
    body: Any = None

    def named(self, name: str) -> list[Any]:
        return [data for event, data in self.events if event == name]


def post_stream(url: str, payload: dict[str, Any], headers: dict[str, str]) -> StreamResult:
    """POST to a LangServe stream endpoint; the events when it streams, else the JSON body."""
    with httpx.stream("POST", url, json=payload, headers=headers, timeout=30) as response:
        if response.headers.get("content-type", "").startswith("application/json"):
            response.read()
            return StreamResult(response.status_code, response.headers, [], response.json())
        events: list[tuple[str, Any]] = []
        event, data = "", ""
        for line in response.iter_lines():
            if line.startswith("event:"):
                event = line.removeprefix("event:").strip()
            elif line.startswith("data:"):
                data += line.removeprefix("data:").strip()
            elif not line and (event or data):  # a blank line ends an event
                events.append((event or "message", json.loads(data) if data else None))
                event, data = "", ""
        return StreamResult(response.status_code, response.headers, events)
