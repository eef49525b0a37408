"""The OpenAPI document tells the truth: every operation lists the errors it can give, with the
body graphgate really sends; `/v1/chat/completions` and the LangGraph API's operations their
request bodies; what is not served yet is no operation."""

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


# The LangGraph API's operations, each with a field its request body has (None: no body).
LANGGRAPH_OPERATIONS: dict[tuple[str, str], str | None] = {
    ("/info", "get"): None,
    ("/assistants/search", "post"): "graph_id",
    ("/assistants/{assistant_id}", "get"): None,
    ("/assistants/{assistant_id}/graph", "get"): None,
    ("/assistants/{assistant_id}/schemas", "get"): None,
    ("/threads", "post"): "metadata",
    ("/threads/search", "post"): "metadata",
    ("/threads/{thread_id}", "get"): None,
    ("/threads/{thread_id}", "patch"): "metadata",
    ("/threads/{thread_id}", "delete"): None,
    ("/threads/{thread_id}/state", "get"): None,
    ("/threads/{thread_id}/state/{checkpoint_id}", "get"): None,
    ("/threads/{thread_id}/state/checkpoint", "post"): "checkpoint",
    ("/threads/{thread_id}/history", "post"): "limit",
    ("/threads/{thread_id}/runs/stream", "post"): "assistant_id",
    ("/threads/{thread_id}/runs/wait", "post"): "assistant_id",
    ("/threads/{thread_id}/runs", "post"): "assistant_id",
    ("/threads/{thread_id}/runs", "get"): None,
    ("/threads/{thread_id}/runs/{run_id}", "get"): None,
    ("/threads/{thread_id}/runs/{run_id}/join", "get"): None,
    ("/threads/{thread_id}/runs/{run_id}/stream", "get"): None,
    ("/threads/{thread_id}/runs/{run_id}/cancel", "post"): None,
    ("/runs/stream", "post"): "assistant_id",
    ("/runs/wait", "post"): "assistant_id",
    ("/runs", "post"): "assistant_id",
}


def request_schema(document: dict[str, Any], operation: dict[str, Any]) -> dict[str, Any]:
    """The JSON request body's schema, its reference resolved."""
    schema: dict[str, Any] = operation["requestBody"]["content"]["application/json"]["schema"]
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def test_the_langgraph_api_is_documented_with_its_request_bodies(
    document: dict[str, Any],
) -> None:
    paths = document["paths"]
    for (path, method), field in LANGGRAPH_OPERATIONS.items():
        assert method in paths.get(path, {}), (path, method)
        operation = paths[path][method]
        if field is None:
            assert "requestBody" not in operation, (path, method)
            continue
        assert field in request_schema(document, operation)["properties"], (path, method)
    run = request_schema(document, paths["/runs/wait"]["post"])
    assert run["required"] == ["assistant_id"]


def test_what_is_not_served_yet_is_not_documented(document: dict[str, Any]) -> None:
    """Crons, the store and updating a thread's state are a 404 (`not_served.py`), no operation."""
    paths = document["paths"]
    assert not [path for path in paths if path.startswith(("/store", "/runs/crons"))]
    assert "post" not in paths["/threads/{thread_id}/state"]
