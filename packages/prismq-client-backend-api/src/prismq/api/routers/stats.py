"""``GET /api/queue/stats``: the queue at a glance."""

from __future__ import annotations

from fastapi import APIRouter

from prismq.api.dependencies import DatabaseDep, ReadPrincipal
from prismq.api.problems import problem_responses
from prismq.api.schemas import StatsOut
from prismq.queue import queue_stats

__all__ = ["router"]

router = APIRouter(prefix="/api/queue", tags=["stats"])


@router.get(
    "/stats",
    response_model=StatsOut,
    summary="Task counts and backlog age",
    responses=problem_responses(401, 403, 503),
)
def read_stats(database: DatabaseDep, _principal: ReadPrincipal) -> StatsOut:
    """Tasks per status, overall, per type and per queue, and how long the oldest ready task
    has waited, all read in one consistent snapshot."""
    return StatsOut.from_stats(queue_stats(database))
