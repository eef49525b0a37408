"""Reading LangServe's server-sent events over plain HTTP with httpx-sse, as any client would."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
from httpx_sse import connect_sse


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
    with (
        httpx.Client(timeout=30) as client,
        connect_sse(client, "POST", url, json=payload, headers=headers) as source,
    ):
        response = source.response
        if response.headers.get("content-type", "").startswith("application/json"):
            response.read()
            return StreamResult(response.status_code, response.headers, [], response.json())
        events = [
            (event.event, json.loads(event.data) if event.data else None)
            for event in source.iter_sse()
        ]
        return StreamResult(response.status_code, response.headers, events)
