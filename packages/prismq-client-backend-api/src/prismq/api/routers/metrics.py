"""``GET /metrics``: Prometheus text format (see :mod:`prismq.api.metrics` for the names).

It needs a token with ``tasks:read`` (or ``admin``): the metrics reveal task types and
queue names, no more than a reader sees; give the scraper a token of its own.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from prismq.api.dependencies import ReadPrincipal
from prismq.api.problems import problem_responses

__all__ = ["router"]

router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **problem_responses(401, 403),
    },
)
def read_metrics(request: Request, _principal: ReadPrincipal) -> Response:
    """Queue depth, backlog age, recent throughput and workers (read from the database at
    each scrape), and this process's request latencies."""
    registry: CollectorRegistry = request.app.state.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
