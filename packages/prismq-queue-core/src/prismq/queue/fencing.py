"""Telling a stale lease from a missing task after a fenced statement changed nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, Update, bindparam, select

from prismq.queue.database import QueueDatabase
from prismq.queue.errors import LeaseLostError, PrismQError, TaskNotFoundError
from prismq.queue.status import TaskStatus
from prismq.queue.tables import task_table


def lease_error(conn: Connection, task_id: int) -> PrismQError:
    """The error for a fenced update of ``task_id`` that matched no row."""
    status = conn.execute(
        select(task_table.c.status).where(task_table.c.id == task_id)
    ).scalar_one_or_none()
    if status is None:
        return TaskNotFoundError(task_id)
    return LeaseLostError(task_id, f"the lease token is no longer valid (the task is now {status})")


def held_params(task_id: int, lease_token: str) -> dict[str, Any]:
    """The parameters :data:`HELD_BY` binds."""
    return {"held_task_id": task_id, "held_lease_token": lease_token}


#: Rows whose lease the bound lease token still holds for the bound task id (:func:`held_params`).
HELD_BY: ColumnElement[bool] = (
    (task_table.c.id == bindparam("held_task_id"))
    & (task_table.c.lease_token == bindparam("held_lease_token"))
    & (task_table.c.status == TaskStatus.LEASED.value)
)


def run_fenced(
    db: QueueDatabase, statement: Update, task_id: int, lease_token: str, **params: Any
) -> Any:
    """Run a ``HELD_BY``-fenced ``UPDATE ... RETURNING value`` in its own transaction.

    Returns the value; raises :class:`LeaseLostError` (or :class:`TaskNotFoundError`) if
    the token no longer holds the task.
    """
    with db.write_statement() as conn:
        value = conn.execute(
            statement, held_params(task_id, lease_token) | params
        ).scalar_one_or_none()
        if value is None:
            # A read that only explains the miss: it changes nothing, so it may run
            # outside the statement's transaction (see write_statement).
            raise lease_error(conn, task_id)
    return value
