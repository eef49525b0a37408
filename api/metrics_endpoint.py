"""`GET /metrics`: Prometheus text format, summed over every gunicorn worker when
`PROMETHEUS_MULTIPROC_DIR` is set (gunicorn.conf.py sets it)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from graphs.settings import Settings


def metrics_router(settings: Settings) -> APIRouter:
    router = APIRouter(tags=["metrics"])
    summed = settings.prometheus_multiproc_dir is not None

    @router.get("/metrics")
    async def metrics() -> Response:
        registry = REGISTRY
        if summed:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
