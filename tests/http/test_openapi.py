"""The OpenAPI document tells the truth: every operation lists the errors it can give, with the
body graphgate really sends, and `/v1/chat/completions` its request body."""

from __future__ import annotations

from typing import Any

import pytest

from graphs.settings import Settings
from server import create_app


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    spec: dict[str, Any] = create_app(Settings(app_env="test")).openapi()
    return spec


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


def test_every_guarded_operation_lists_the_errors_with_the_error_schema(
    document: dict[str, Any],
) -> None:
    guarded = [op for op in operations(document) if not op[0].startswith("/health/")]
    paths = {path for path, _, _ in guarded}
    assert {"/chat/invoke", "/chat/batch", "/v1/chat/completions", "/usage"} <= paths
    for path, method, operation in guarded:
        codes = set(operation["responses"])
        assert {"400", "401", "404", "413", "422", "429", "500", "503"} <= codes, (path, method)
        schema = operation["responses"]["401"]["content"]["application/json"]["schema"]
        expected = "OpenAIError" if path.startswith("/v1/") else "Error"
        assert schema == {"$ref": f"#/components/schemas/{expected}"}


def test_the_error_schema_is_the_body_graphgate_sends(document: dict[str, Any]) -> None:
    error = document["components"]["schemas"]["Error"]["properties"]["error"]
    assert error["required"] == ["code", "message", "trace_id"]
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_chat_completions_documents_its_request_body(document: dict[str, Any]) -> None:
    body = document["paths"]["/v1/chat/completions"]["post"]["requestBody"]
    reference = body["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][reference.rsplit("/", 1)[-1]]
    assert "messages" in schema["required"]
