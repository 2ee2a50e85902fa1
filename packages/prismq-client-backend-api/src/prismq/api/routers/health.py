"""``/healthz`` (the process answers) and ``/readyz`` (it can serve: database up, migrated).

Neither needs a token, so that load balancers and orchestrators can probe them.
"""

from __future__ import annotations

from fastapi import APIRouter

from prismq.api.dependencies import DatabaseDep
from prismq.api.problems import problem_responses
from prismq.api.schemas import HealthOut, ReadyOut
from prismq.queue import migrate

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut, summary="Liveness")
def healthz() -> HealthOut:
    """200 while the process can answer; it does not touch the database."""
    return HealthOut()


@router.get(
    "/readyz",
    response_model=ReadyOut,
    summary="Readiness",
    responses={
        503: {
            **problem_responses(503)[503],
            "description": "The database is unreachable or not migrated; `detail` says which.",
        }
    },
)
def readyz(database: DatabaseDep) -> ReadyOut:
    """200 when the database answers and its schema is at the revision this release
    expects; otherwise 503 saying why (unreachable, or which command migrates it)."""
    # check() reads the schema revision, so it also proves the database answers; unlike a
    # ping it does not create a missing SQLite file.
    migrate.check(database)
    return ReadyOut(schema_revision=migrate.head_revision())
