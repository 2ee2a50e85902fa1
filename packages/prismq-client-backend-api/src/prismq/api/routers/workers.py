"""``GET /api/queue/workers``: the registered workers and how fresh their heartbeats are."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from prismq.api.dependencies import DatabaseDep, ReadPrincipal, SettingsDep
from prismq.api.problems import problem_responses
from prismq.api.schemas import WorkerListOut, WorkerOut
from prismq.queue import list_workers

__all__ = ["router"]

router = APIRouter(prefix="/api/queue", tags=["workers"])


@router.get(
    "/workers",
    response_model=WorkerListOut,
    summary="List workers",
    responses=problem_responses(401, 403, 422, 503),
)
def read_workers(
    database: DatabaseDep,
    settings: SettingsDep,
    _principal: ReadPrincipal,
    include_stopped: Annotated[
        bool, Query(description="Also list workers that shut down cleanly.")
    ] = True,
) -> WorkerListOut:
    """Every registered worker with its heartbeat age (database clock) and its state:
    `active`, `stale` (silent for longer than the configured limit) or `stopped`."""
    workers = list_workers(
        database,
        stale_after_seconds=settings.api_stale_worker_seconds,
        include_stopped=include_stopped,
    )
    return WorkerListOut(items=[WorkerOut.from_record(worker) for worker in workers])
