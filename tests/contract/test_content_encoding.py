"""A compressed request body (`Content-Encoding: gzip`) is refused as what it is: 415
`unsupported_media_type` naming Content-Encoding, with `Accept-Encoding: identity`, on every
JSON route, rather than read as a body that is "not valid UTF-8"."""

from __future__ import annotations

import gzip
import json

import pytest

from tests.contract.conftest import AppClient

INVOKE = {"input": {"question": "Hi"}}
BATCH = {"inputs": [{"question": "Hi"}]}
COMPLETION = {"messages": [{"role": "user", "content": "Hi"}]}


@pytest.mark.parametrize(
    ("path", "body"),
    [("/chat/invoke", INVOKE), ("/chat/batch", BATCH), ("/chat/stream", INVOKE)],
)
async def test_a_gzip_body_on_a_langserve_route_is_415_naming_content_encoding(
    app_client: AppClient, path: str, body: dict[str, object]
) -> None:
    async with app_client() as client:
        response = await client.post(
            path,
            content=gzip.compress(json.dumps(body).encode()),
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
    assert response.status_code == 415
    error = response.json()["error"]
    assert error["code"] == "unsupported_media_type"
    assert "Content-Encoding" in error["message"]
    assert error["trace_id"] == response.headers["X-Trace-Id"]
    assert response.headers["Accept-Encoding"] == "identity"


async def test_a_gzip_body_on_v1_is_415_in_openais_shape(app_client: AppClient) -> None:
    async with app_client() as client:
        response = await client.post(
            "/v1/chat/completions",
            content=gzip.compress(json.dumps(COMPLETION).encode()),
            headers={"Content-Type": "application/json", "Content-Encoding": "GZip"},
        )
    assert response.status_code == 415
    error = response.json()["error"]
    assert error["code"] == "unsupported_media_type"
    assert error["type"] == "invalid_request_error"
    assert "Content-Encoding" in error["message"]


@pytest.mark.parametrize("encoding", ["deflate", "br", "gzip, identity"])
async def test_every_content_coding_but_identity_is_refused(
    app_client: AppClient, encoding: str
) -> None:
    async with app_client() as client:
        response = await client.post(
            "/chat/invoke",
            content=json.dumps(INVOKE).encode(),
            headers={"Content-Type": "application/json", "Content-Encoding": encoding},
        )
    assert response.status_code == 415
    assert "Content-Encoding" in response.json()["error"]["message"]


async def test_an_identity_encoded_body_is_served(app_client: AppClient) -> None:
    async with app_client() as client:
        response = await client.post(
            "/chat/invoke",
            json=INVOKE,
            headers={"Content-Encoding": "identity"},
        )
    assert response.status_code == 200
    assert response.json()["output"]["content"]
