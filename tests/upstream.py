"""The test side of the OpenAI-compatible double: behaviors in, counters out."""

from __future__ import annotations

from typing import Any

import httpx


class Upstream:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.api_url = f"{base_url}/v1"

    def behave(self, match: str, **behavior: Any) -> None:
        response = httpx.post(
            f"{self.base_url}/control/behaviors", json={"match": match, **behavior}
        )
        response.raise_for_status()

    def stats(self, match: str) -> dict[str, Any]:
        response = httpx.get(f"{self.base_url}/control/stats", params={"match": match})
        response.raise_for_status()
        stats: dict[str, Any] = response.json()
        return stats

    async def astats(self, match: str) -> dict[str, Any]:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"{self.base_url}/control/stats", params={"match": match})
        response.raise_for_status()
        stats: dict[str, Any] = response.json()
        return stats

    async def wait_for(
        self, match: str, counter: str, value: int = 1, within: float = 5
    ) -> dict[str, Any] | None:
        """The stats once `counter` reaches `value` for `match`, or None after `within` s."""
        async with httpx.AsyncClient(timeout=within + 5) as client:
            response = await client.get(
                f"{self.base_url}/control/wait",
                params={"match": match, "counter": counter, "value": value, "timeout": within},
            )
        if response.status_code == 408:
            return None
        response.raise_for_status()
        stats: dict[str, Any] = response.json()
        return stats

    def sent_messages(self, match: str) -> list[list[dict[str, Any]]]:
        """The messages of each chat request whose prompt contained `match`, oldest first."""
        return [body["messages"] for body in self.stats(match)["bodies"] if "messages" in body]

    def prompts(self, match: str) -> list[list[dict[str, Any]]]:
        """The conversation of each such request: its messages after the chat prompt's system
        message, which must come first."""
        conversations = []
        for messages in self.sent_messages(match):
            assert messages[0]["role"] == "system", messages
            conversations.append(messages[1:])
        return conversations
