"""AUTH_MODE=trusted_header: the gateway in front names the principal in AUTH_HEADER; exactly
one such header, and X-User-Id means nothing."""

from __future__ import annotations

import httpx
import pytest

from tests.live_servers import Graphgate, StartGraphgate


@pytest.fixture(scope="module")
def gateway_server(graphgate_factory: StartGraphgate) -> Graphgate:
    return graphgate_factory(AUTH_MODE="trusted_header")


def usage(server: Graphgate, headers: list[tuple[str, str]]) -> httpx.Response:
    return httpx.get(f"{server.url}/usage", headers=headers)


def test_the_gateways_header_names_the_principal(gateway_server: Graphgate, user: str) -> None:
    response = usage(gateway_server, [("X-Authenticated-User", user), ("X-User-Id", "other")])
    assert response.status_code == 200
    assert response.json()["principal"] == user


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [("X-User-Id", "someone")],
        [("X-Authenticated-User", "")],
        [("X-Authenticated-User", "bad name!")],
        [("X-Authenticated-User", "victim"), ("X-Authenticated-User", "me")],
    ],
)
def test_no_single_valid_gateway_header_is_401(
    gateway_server: Graphgate, headers: list[tuple[str, str]]
) -> None:
    response = usage(gateway_server, headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
