"""`GET /info` and the assistants: one system assistant per graph route, named after it (its
id is the route's name, as a `langgraph.json` graph id is). Assistants are not created,
versioned or deleted: a route file declares them."""

from __future__ import annotations

import importlib.metadata
from typing import Any

from fastapi import APIRouter, Query, Response

from api.caller import Caller
from api.langgraph.bodies import AssistantSearch
from api.langgraph.served import Service, route_of
from api.langgraph.wire import assistant

router = APIRouter(tags=["langgraph assistants"])


@router.get("/info")
async def server_info(caller: Caller) -> dict[str, Any]:
    """What the LangGraph clients probe first: the server and the features it has."""
    return {
        "version": importlib.metadata.version("langgraph"),
        "langgraph_py_version": importlib.metadata.version("langgraph"),
        "flags": {"assistants": True, "crons": False, "langsmith": False},
        "host": {"kind": "self-hosted", "project_id": None, "revision_id": None},
    }


def matches(found: dict[str, Any], search: AssistantSearch) -> bool:
    if search.graph_id is not None and found["graph_id"] != search.graph_id:
        return False
    if search.name is not None and search.name.lower() not in found["name"].lower():
        return False
    wanted = search.metadata or {}
    return all(found["metadata"].get(key) == value for key, value in wanted.items())


@router.post("/assistants/search")
async def search_assistants(
    search: AssistantSearch, service: Service, caller: Caller, response: Response
) -> list[dict[str, Any]]:
    found = [a for r in service.graph_routes.values() if matches(a := assistant(r), search)]
    page = found[search.offset : search.offset + search.limit]
    response.headers["X-Pagination-Total"] = str(len(found))
    if search.offset + len(page) < len(found):
        response.headers["X-Pagination-Next"] = str(search.offset + len(page))
    return page


@router.get("/assistants/{assistant_id}")
async def get_assistant(assistant_id: str, service: Service, caller: Caller) -> dict[str, Any]:
    return assistant(route_of(service, assistant_id))


@router.get("/assistants/{assistant_id}/graph")
async def get_assistant_graph(
    assistant_id: str, service: Service, caller: Caller, xray: bool | int = Query(default=False)
) -> dict[str, Any]:
    """The graph's nodes and edges (`Graph.to_json`), `xray` levels of subgraphs drawn in."""
    drawn = route_of(service, assistant_id).stateless_graph.get_graph(xray=xray).to_json()
    for node in drawn["nodes"]:
        data = node.get("data")
        if isinstance(data, dict):
            data.pop("id", None)  # a Python object's id: the LangGraph server drops it too
    return drawn


@router.get("/assistants/{assistant_id}/schemas")
async def get_assistant_schemas(
    assistant_id: str, service: Service, caller: Caller
) -> dict[str, Any]:
    """The graph's JSON schemas; its state's is its output's (every channel it returns)."""
    route = route_of(service, assistant_id)
    graph = route.stateless_graph
    return {
        "graph_id": route.spec.name,
        "input_schema": graph.get_input_jsonschema(),
        "output_schema": graph.get_output_jsonschema(),
        "state_schema": graph.get_output_jsonschema(),
        "config_schema": graph.config_schema().model_json_schema(),
        "context_schema": graph.get_context_jsonschema(),
    }
